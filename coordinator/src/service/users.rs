//! The `Ladder` service, for users: sweeps (submit, get, list, cancel), jobs (list, get, watch),
//! curves, checkpoints, datasets, workers, fits and logs; each a conversion around one [`App`]
//! call.
use ladder_core::dataset::DatasetHeader;
use ladder_proto::pb;
use ladder_proto::pb::ladder_server::Ladder;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{Grpc, Stream_, chunks};
use crate::app::transfer::DatasetPart;
use crate::error::{CoordError, Result};

#[tonic::async_trait]
impl Ladder for Grpc {
    async fn submit_sweep(
        &self,
        req: Request<pb::SubmitSweepRequest>,
    ) -> Result<Response<pb::SubmitSweepResponse>, Status> {
        let q = req.into_inner();
        let origin = if q.origin.trim().is_empty() { "the submitted spec".to_string() } else { q.origin };
        let (status, created) = self.0.submit(q.spec_toml, origin).await?;
        Ok(Response::new(pb::SubmitSweepResponse { sweep: Some(pb::Sweep::from(&status)), created }))
    }

    async fn get_sweep(&self, req: Request<pb::GetSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        Ok(Response::new(pb::Sweep::from(&self.0.sweep(&req.into_inner().sweep)?)))
    }

    async fn list_sweeps(
        &self,
        req: Request<pb::ListSweepsRequest>,
    ) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let q = req.into_inner();
        let (list, more) = self.0.sweeps(q.after_id, q.page_size as usize)?;
        let sweeps = list.iter().map(pb::Sweep::from).collect();
        Ok(Response::new(pb::ListSweepsResponse { sweeps, next_after_id: more.unwrap_or(0) }))
    }

    async fn cancel_sweep(&self, req: Request<pb::CancelSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        Ok(Response::new(pb::Sweep::from(&self.0.cancel(req.into_inner().sweep).await?)))
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let jobs = self.0.jobs(&req.into_inner().sweep, true)?.iter().map(pb::Job::from).collect();
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        Ok(Response::new(pb::Job::from(&self.0.job(req.into_inner().job_id)?)))
    }

    type WatchJobsStream = Stream_<pb::Job>;

    async fn watch_jobs(&self, req: Request<pb::WatchJobsRequest>) -> Result<Response<Self::WatchJobsStream>, Status> {
        let rx = self.0.watch(&req.into_inner().sweep)?;
        let jobs = ReceiverStream::new(rx).map(|j| j.map(|j| pb::Job::from(&j)).map_err(Status::from));
        Ok(Response::new(Box::pin(jobs)))
    }

    async fn get_curve(&self, req: Request<pb::GetCurveRequest>) -> Result<Response<pb::Curve>, Status> {
        let q = req.into_inner();
        self.0.unseal(q.job_id).await?;
        let (points, more) = self.0.curve(q.job_id, q.after_step, q.limit as usize)?;
        let points = points.iter().map(pb::MetricPoint::from).collect();
        Ok(Response::new(pb::Curve { job_id: q.job_id, points, next_after_step: more.unwrap_or(0) }))
    }

    async fn list_checkpoints(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        let list = self.0.checkpoints(req.into_inner().job_id)?;
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints: list.checkpoints.iter().map(pb::CheckpointInfo::from).collect(),
            policy: Some(pb::RetentionPolicy::from(&list.policy)),
            deleted: list.deleted,
        }))
    }

    type FetchCheckpointStream = Stream_<pb::Chunk>;

    async fn fetch_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::FetchCheckpointStream>, Status> {
        let q = req.into_inner();
        self.0.unseal(q.job_id).await?;
        Ok(Response::new(chunks(self.0.checkpoint_stream(q.job_id, q.step)?)))
    }

    async fn register_dataset(
        &self,
        req: Request<Streaming<pb::DatasetUpload>>,
    ) -> Result<Response<pb::Dataset>, Status> {
        let parts = req.into_inner().map(|m| match m {
            Ok(pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(h)) }) => {
                Ok(DatasetPart::Header(DatasetHeader::try_from(&h)?))
            }
            Ok(pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Bytes(b)) }) => {
                Ok(DatasetPart::Bytes { file: b.file, data: b.data })
            }
            Ok(pb::DatasetUpload { part: None }) => {
                Err(CoordError::invalid("register_dataset", "a message with no part"))
            }
            Err(e) => Err(CoordError::Stream(e.message().to_string())),
        });
        let info = self.0.register_dataset(parts).await?;
        Ok(Response::new(pb::Dataset::from(&info)))
    }

    async fn list_datasets(
        &self,
        _: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        let datasets = self.0.datasets()?.iter().map(pb::Dataset::from).collect();
        Ok(Response::new(pb::ListDatasetsResponse { datasets }))
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let workers = self.0.workers()?.iter().map(pb::WorkerInfo::from).collect();
        Ok(Response::new(pb::ListWorkersResponse { workers }))
    }

    async fn get_fits(&self, req: Request<pb::GetFitsRequest>) -> Result<Response<pb::Fits>, Status> {
        let f = self.0.fits(&req.into_inner().sweep).await?;
        Ok(Response::new(pb::Fits {
            report_json: f.report_json().unwrap_or_default(),
            computed_ms: f.computed_ms,
            error: f.error.clone().unwrap_or_default(),
            points: f.points,
        }))
    }

    async fn get_predictions(
        &self,
        req: Request<pb::GetPredictionsRequest>,
    ) -> Result<Response<pb::Predictions>, Status> {
        let p = self.0.predictions(&req.into_inner().sweep).await?;
        Ok(Response::new(pb::Predictions { predictions_json: serde_json::to_string(&p).map_err(CoordError::from)? }))
    }

    async fn lock_predictions(
        &self,
        req: Request<pb::LockPredictionsRequest>,
    ) -> Result<Response<pb::Predictions>, Status> {
        let p = self.0.lock_predictions(&req.into_inner().sweep).await?;
        Ok(Response::new(pb::Predictions { predictions_json: serde_json::to_string(&p).map_err(CoordError::from)? }))
    }

    async fn get_logs(&self, req: Request<pb::GetLogsRequest>) -> Result<Response<pb::Logs>, Status> {
        let q = req.into_inner();
        self.0.unseal(q.job_id).await?;
        let lines = self
            .0
            .logs(q.job_id, q.after_seq)?
            .into_iter()
            .map(|l| pb::LogLine { seq: l.seq, attempt: l.attempt, at_ms: l.at_ms, source: l.source, text: l.text })
            .collect();
        Ok(Response::new(pb::Logs { lines }))
    }
}
