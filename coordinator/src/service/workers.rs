//! The `WorkerService`, for worker daemons: register, heartbeat, the Acquire long-poll, the
//! events of each attempt, and checkpoints and datasets; each a conversion around one [`App`]
//! call, with the caller's credential taken from the request.
use std::time::Duration;

use ladder_proto::convert::attempts::decode_events;
use ladder_proto::pb;
use ladder_proto::pb::worker_service_server::WorkerService;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{Grpc, Stream_, chunks, credential};
use crate::app::transfer::{CheckpointHeader, CheckpointPart};
use crate::app::work::SlotRequest;
use crate::error::{CoordError, Result};

#[tonic::async_trait]
impl WorkerService for Grpc {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let cred = credential(&req);
        let q = req.into_inner();
        let memory = match q.slot_memory_bytes.len() {
            0 => vec![0; q.slots.len()],
            n if n == q.slots.len() => q.slot_memory_bytes,
            n => {
                let m = format!("{n} memory sizes for {} slots", q.slots.len());
                return Err(CoordError::invalid("register.slot_memory_bytes", m).into());
            }
        };
        let slots = q.slots.into_iter().zip(memory).collect();
        let (worker_id, lease_ttl_ms) = self.0.register(cred, q.name, slots).await?;
        Ok(Response::new(pb::RegisterResponse { worker_id, lease_ttl_ms }))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let cred = credential(&req);
        let q = req.into_inner();
        let running = q.running.iter().map(|r| (r.job_id, r.attempt)).collect();
        let stop = self.0.heartbeat(&cred, q.worker_id, running).await?;
        let stop = stop.into_iter().map(|(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect();
        Ok(Response::new(pb::HeartbeatResponse { stop }))
    }

    async fn acquire(&self, req: Request<pb::AcquireRequest>) -> Result<Response<pb::AcquireResponse>, Status> {
        let cred = credential(&req);
        let q = req.into_inner();
        let ask = SlotRequest {
            worker_id: q.worker_id,
            slot: q.slot,
            max_jobs: q.max_jobs,
            memory_bytes: q.memory_bytes,
            memory_total_bytes: q.memory_total_bytes,
        };
        let leased = self.0.acquire(&cred, ask, Duration::from_millis(q.wait_ms)).await?;
        let mut assignments = leased.iter().map(pb::Assignment::from);
        let assignment = assignments.next();
        Ok(Response::new(pb::AcquireResponse { assignment, fused: assignments.collect() }))
    }

    async fn report_events(
        &self,
        req: Request<pb::ReportEventsRequest>,
    ) -> Result<Response<pb::ReportEventsResponse>, Status> {
        let cred = credential(&req);
        let q = req.into_inner();
        let decoded = decode_events(&q.events);
        let wire = (decoded.refused, decoded.why);
        let out = self.0.report(&cred, q.worker_id, q.job_id, q.attempt, decoded.events, wire).await?;
        Ok(Response::new(pb::ReportEventsResponse { stored: out.stored, refused: out.refused }))
    }

    async fn upload_checkpoint(
        &self,
        req: Request<Streaming<pb::CheckpointUpload>>,
    ) -> Result<Response<pb::CheckpointInfo>, Status> {
        let cred = credential(&req);
        let parts = req.into_inner().map(|m| match m {
            Ok(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) }) => {
                Ok(CheckpointPart::Header(CheckpointHeader {
                    worker_id: h.worker_id,
                    job_id: h.job_id,
                    attempt: h.attempt,
                    step: h.step,
                    total_bytes: h.total_bytes,
                    sha256: h.sha256,
                }))
            }
            Ok(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(d)) }) => {
                Ok(CheckpointPart::Data(d))
            }
            Ok(pb::CheckpointUpload { part: None }) => {
                Err(CoordError::invalid("upload_checkpoint", "a message with no part"))
            }
            Err(e) => Err(CoordError::Stream(e.message().to_string())),
        });
        let info = self.0.upload_checkpoint(parts, &cred).await?;
        Ok(Response::new(pb::CheckpointInfo::from(&info)))
    }

    type DownloadCheckpointStream = Stream_<pb::Chunk>;

    async fn download_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::DownloadCheckpointStream>, Status> {
        let q = req.into_inner();
        Ok(Response::new(chunks(self.0.checkpoint_stream(q.job_id, q.step)?)))
    }

    type FetchDatasetStream = Stream_<pb::Chunk>;

    async fn fetch_dataset(
        &self,
        req: Request<pb::FetchDatasetRequest>,
    ) -> Result<Response<Self::FetchDatasetStream>, Status> {
        let q = req.into_inner();
        Ok(Response::new(chunks(self.0.dataset_stream(&q.sha256, &q.file)?)))
    }
}
