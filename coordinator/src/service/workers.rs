//! The `WorkerService`, for worker daemons: register, heartbeat, the Acquire long-poll, and the
//! events of each attempt. Every call after Register must carry the credential that registered
//! its worker id; every write names (job, attempt) and is fenced.
use std::sync::atomic::Ordering;
use std::time::Duration;

use ladder_core::attempt::Assignment;
use ladder_proto::convert::attempts::decode_events;
use ladder_proto::pb;
use ladder_proto::pb::worker_service_server::WorkerService;
use tonic::{Request, Response, Status, Streaming};

use super::{Coordinator, Stream_, credential};
use crate::error::{CoordError, Result};
use crate::records::{JobRecord, JobState};
use crate::{attempts, blobs, queue, workers};

#[tonic::async_trait]
impl WorkerService for Coordinator {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let cred = credential(&req);
        let q = req.into_inner();
        if q.slots.is_empty() {
            return Err(CoordError::invalid("register.slots", "a worker needs at least one slot").into());
        }
        for s in &q.slots {
            ladder_core::job::parse_device(s).map_err(|e| CoordError::invalid("register.slots", e.to_string()))?;
        }
        if q.name.is_empty() || q.name.len() > 128 || q.name.chars().any(|c| c.is_control()) {
            return Err(CoordError::invalid("register.name", "a worker name is 1-128 printable characters").into());
        }
        let memory = match q.slot_memory_bytes.len() {
            0 => vec![0; q.slots.len()],
            n if n == q.slots.len() => q.slot_memory_bytes.clone(),
            n => {
                let m = format!("{n} memory sizes for {} slots", q.slots.len());
                return Err(CoordError::invalid("register.slot_memory_bytes", m).into());
            }
        };
        let slots: Vec<(String, u64)> = q.slots.iter().map(|s| s.trim().to_string()).zip(memory).collect();
        let name = q.name.clone();
        let now = self.now_ms();
        let id = self.store.write(move |txn| workers::register(txn, &name, &slots, &cred, now)).await?;
        tracing::info!(worker = %id, slots = ?q.slots, "worker registered");
        Ok(Response::new(pb::RegisterResponse { worker_id: id, lease_ttl_ms: self.ttl_ms() }))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.check_worker(&req, &req.get_ref().worker_id)?;
        let q = req.into_inner();
        let (ttl, now) = (self.ttl_ms(), self.now_ms());
        let running: Vec<(u64, u32)> = q.running.iter().map(|r| (r.job_id, r.attempt)).collect();
        // Checked on a read and renewed in memory: a heartbeat waits on no fsync.
        let checked = attempts::check_beat(&self.store.read()?, &q.worker_id, &running)?;
        let until = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        for &(job, attempt) in &checked.renew {
            self.renewals.renew(job, attempt, until);
        }
        let every = i64::try_from(ttl / 3).unwrap_or(i64::MAX);
        let persist = self.renewals.persist_due(&q.worker_id, now, every);
        let worker = q.worker_id;
        let write = move |txn: &redb::WriteTransaction| attempts::heartbeat(txn, &worker, &running, ttl, now);
        if checked.unlisted {
            // A lease this worker holds but does not run: the writer releases it (a lost reply).
            let released = self.store.write(write).await?;
            self.publish(&released);
        } else if persist {
            let (store, coord) = (self.store.clone(), self.clone());
            tokio::spawn(async move {
                match store.write(write).await {
                    Ok(released) => coord.publish(&released),
                    Err(e) => tracing::warn!("persisting a heartbeat: {e}"),
                }
            });
        }
        let stop = checked.stop.into_iter().map(|(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect();
        Ok(Response::new(pb::HeartbeatResponse { stop }))
    }

    async fn acquire(&self, req: Request<pb::AcquireRequest>) -> Result<Response<pb::AcquireResponse>, Status> {
        self.check_worker(&req, &req.get_ref().worker_id)?;
        let q = req.into_inner();
        let wait = Duration::from_millis(q.wait_ms).min(self.cfg.max_wait);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable(); // registered before the claim: no wake-up is lost
            let leased = self.claim(&q).await?;
            if !leased.is_empty() {
                let mut assignments = leased.iter().map(pb::Assignment::from);
                let first = assignments.next();
                return Ok(Response::new(pb::AcquireResponse { assignment: first, fused: assignments.collect() }));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(Response::new(pb::AcquireResponse { assignment: None, fused: Vec::new() }));
                }
                _ = self.shutdown.cancelled() => return Err(CoordError::Shutdown.into()),
            }
        }
    }

    async fn report_events(
        &self,
        req: Request<pb::ReportEventsRequest>,
    ) -> Result<Response<pb::ReportEventsResponse>, Status> {
        self.check_worker(&req, &req.get_ref().worker_id)?;
        let q = req.into_inner();
        let decoded = decode_events(&q.events);
        self.count_refused(q.job_id, q.attempt, decoded.refused, decoded.why.as_deref());
        let (worker, job_id, attempt, events) = (q.worker_id, q.job_id, q.attempt, decoded.events);
        // An attempt that is not current never becomes current again: refused on a read, a
        // burst of stale reports (after a cancel) never reaches the writer.
        crate::lifecycle::current(&crate::records::JobRecord::load(&self.store.read()?, job_id)?, &worker, attempt)?;
        let events = std::sync::Arc::new(events);
        let evs = events.clone();
        let out = self.store.write(move |txn| attempts::report(txn, &worker, job_id, attempt, &evs)).await?;
        if out.stored > 0 {
            self.stored(out.job.sweep_id, job_id, attempt, &events);
        }
        self.count_refused(job_id, attempt, out.refused, out.why.as_deref());
        if out.job.state != JobState::Running {
            tracing::info!(job = out.job.id, state = ?out.job.state, failure = ?out.job.failure, "attempt ended");
        }
        self.counters.points.fetch_add(u64::from(out.stored), Ordering::Relaxed);
        self.publish(std::slice::from_ref(&out.job)); // wakes one Acquire if the job was requeued
        self.publish(&out.branches);
        Ok(Response::new(pb::ReportEventsResponse { stored: out.stored, refused: decoded.refused + out.refused }))
    }

    async fn upload_checkpoint(
        &self,
        req: Request<Streaming<pb::CheckpointUpload>>,
    ) -> Result<Response<pb::CheckpointInfo>, Status> {
        let cred = credential(&req);
        let info = self.receive_checkpoint(req.into_inner(), &cred).await?;
        Ok(Response::new(pb::CheckpointInfo::from(&info)))
    }

    type DownloadCheckpointStream = Stream_<pb::Chunk>;

    async fn download_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::DownloadCheckpointStream>, Status> {
        let q = req.into_inner();
        Ok(Response::new(self.checkpoint_stream(q.job_id, q.step)?))
    }

    type FetchDatasetStream = Stream_<pb::Chunk>;

    async fn fetch_dataset(
        &self,
        req: Request<pb::FetchDatasetRequest>,
    ) -> Result<Response<Self::FetchDatasetStream>, Status> {
        let q = req.into_inner();
        Ok(Response::new(self.dataset_stream(&q.sha256, &q.file)?))
    }
}

impl Coordinator {
    /// One claim for the slot asking: the jobs leased, as assignments (the first first, then
    /// the jobs fused with it).
    async fn claim(&self, q: &pb::AcquireRequest) -> Result<Vec<Assignment>> {
        let (ttl, now) = (self.ttl_ms(), self.now_ms());
        let (w, s, max_jobs) = (q.worker_id.clone(), q.slot.clone(), q.max_jobs);
        let (memory_bytes, memory_total_bytes) = (q.memory_bytes, q.memory_total_bytes);
        let claimed = self
            .store
            .write(move |txn| {
                let ask = queue::SlotAsk { worker_id: &w, slot: &s, max_jobs, memory_bytes, memory_total_bytes };
                queue::claim(txn, ask, ttl, now)
            })
            .await?;
        let r = self.store.read()?;
        let mut out = Vec::with_capacity(claimed.leased.len());
        for job in &claimed.leased {
            tracing::info!(job = job.id, attempt = job.attempt, worker = %q.worker_id, "leased");
            let _ = self.updates.send(job.status());
            out.push(assignment(&job.clone().with_config(&r)?, ttl, &r)?);
        }
        Ok(out)
    }
}

/// The assignment of a job just leased, with every checkpoint step it could resume from.
fn assignment(j: &JobRecord, ttl_ms: u64, r: &crate::store::Read) -> Result<Assignment> {
    let config = j.config.clone().ok_or_else(|| CoordError::storage(format!("job {} has no stored config", j.id)))?;
    Ok(Assignment {
        job_id: j.id,
        attempt: j.attempt,
        config,
        dataset_sha256: j.dataset_sha256.clone(),
        resume_step: j.checkpoint_step,
        lease_ttl_ms: ttl_ms,
        memory_bytes: j.memory_bytes,
        checkpoint_steps: blobs::checkpoints(r, j.id)?.iter().map(|c| c.info.step).collect(),
        branch_from: crate::blobs::branch_source(r, j)?,
    })
}
