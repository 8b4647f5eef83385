//! The `Ladder` service, for users: sweeps (submit, get, list, cancel), jobs (list, get, watch),
//! curves, checkpoints, datasets and workers.
use std::collections::HashSet;

use ladder_core::JobState;
use ladder_proto::pb;
use ladder_proto::pb::ladder_server::Ladder;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{CURVE_PAGE, CURVE_PAGE_MAX, Coordinator, SWEEP_PAGE, Stream_};
use crate::error::{CoordError, Result};
use crate::records::JobRecord;
use crate::{attempts, blobs, sweeps, workers};

#[tonic::async_trait]
impl Ladder for Coordinator {
    async fn submit_sweep(
        &self,
        req: Request<pb::SubmitSweepRequest>,
    ) -> Result<Response<pb::SubmitSweepResponse>, Status> {
        let q = req.into_inner();
        let origin = if q.origin.trim().is_empty() { "the submitted spec".to_string() } else { q.origin };
        let (rec, created) = self.submit(q.spec_toml, origin).await?;
        if created {
            tracing::info!(sweep = rec.id, name = %rec.name, jobs = rec.job_ids.len(), "sweep submitted");
            self.work.notify_waiters();
        }
        let status = sweeps::status(&self.store.read()?, &rec)?;
        Ok(Response::new(pb::SubmitSweepResponse { sweep: Some(pb::Sweep::from(&status)), created }))
    }

    async fn get_sweep(&self, req: Request<pb::GetSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, &req.into_inner().sweep)?;
        Ok(Response::new(pb::Sweep::from(&sweeps::status(&r, &s)?)))
    }

    async fn list_sweeps(
        &self,
        req: Request<pb::ListSweepsRequest>,
    ) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let q = req.into_inner();
        let limit = match q.page_size as usize {
            0 => SWEEP_PAGE,
            n => n.min(SWEEP_PAGE),
        };
        let r = self.store.read()?;
        let (list, more) = sweeps::list(&r, q.after_id, limit)?;
        let mut out = Vec::with_capacity(list.len());
        for s in &list {
            out.push(pb::Sweep::from(&sweeps::status(&r, s)?));
        }
        Ok(Response::new(pb::ListSweepsResponse { sweeps: out, next_after_id: more.unwrap_or(0) }))
    }

    async fn cancel_sweep(&self, req: Request<pb::CancelSweepRequest>) -> Result<Response<pb::Sweep>, Status> {
        let key = req.into_inner().sweep;
        let (s, changed) = self.store.write(move |txn| sweeps::cancel(txn, &key)).await?;
        self.publish(&changed);
        Ok(Response::new(pb::Sweep::from(&sweeps::status(&self.store.read()?, &s)?)))
    }

    async fn list_jobs(&self, req: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, &req.into_inner().sweep)?;
        let slots = self.live_slots(&r)?;
        let mut jobs = Vec::new();
        for j in sweeps::jobs_of(&r, &s)? {
            jobs.push(pb::Job::from(&status(&r, &j.with_config(&r)?, &slots)?));
        }
        Ok(Response::new(pb::ListJobsResponse { jobs }))
    }

    async fn get_job(&self, req: Request<pb::GetJobRequest>) -> Result<Response<pb::Job>, Status> {
        let r = self.store.read()?;
        let job = JobRecord::load(&r, req.into_inner().job_id)?.with_config(&r)?;
        Ok(Response::new(pb::Job::from(&status(&r, &job, &self.live_slots(&r)?)?)))
    }

    type WatchJobsStream = Stream_<pb::Job>;

    async fn watch_jobs(&self, req: Request<pb::WatchJobsRequest>) -> Result<Response<Self::WatchJobsStream>, Status> {
        let mut updates = self.updates.subscribe(); // before the snapshot: no change is missed
        let r = self.store.read()?;
        let sweep = sweeps::find(&r, &req.into_inner().sweep)?;
        let snapshot = sweeps::jobs_of(&r, &sweep)?;
        drop(r);
        // The jobs still to end, kept from the updates themselves: no re-read per update.
        let mut open: HashSet<u64> = snapshot.iter().filter(|j| !j.state.is_final()).map(|j| j.id).collect();
        let (tx, rx) = mpsc::channel(256);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            for j in &snapshot {
                if tx.send(Ok(pb::Job::from(&j.status()))).await.is_err() {
                    return;
                }
            }
            while !open.is_empty() {
                let job = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    j = updates.recv() => j,
                };
                match job {
                    Ok(j) if j.sweep_id == sweep.id => {
                        if JobState::is_final(j.state) {
                            open.remove(&j.id);
                        } else {
                            open.insert(j.id);
                        }
                        if tx.send(Ok(pb::Job::from(&j))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::data_loss(format!("watcher fell {n} updates behind; watch again"))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_curve(&self, req: Request<pb::GetCurveRequest>) -> Result<Response<pb::Curve>, Status> {
        let q = req.into_inner();
        let limit = match q.limit as usize {
            0 => CURVE_PAGE,
            n => n.min(CURVE_PAGE_MAX),
        };
        let r = self.store.read()?;
        JobRecord::load(&r, q.job_id)?;
        let (points, more) = attempts::curve(&r, q.job_id, q.after_step, limit)?;
        let points = points.iter().map(pb::MetricPoint::from).collect();
        Ok(Response::new(pb::Curve { job_id: q.job_id, points, next_after_step: more.unwrap_or(0) }))
    }

    async fn list_checkpoints(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        let list = blobs::checkpoints(&self.store.read()?, req.into_inner().job_id)?;
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints: list.iter().map(|c| pb::CheckpointInfo::from(&c.info)).collect(),
        }))
    }

    type FetchCheckpointStream = Stream_<pb::Chunk>;

    async fn fetch_checkpoint(
        &self,
        req: Request<pb::FetchCheckpointRequest>,
    ) -> Result<Response<Self::FetchCheckpointStream>, Status> {
        let q = req.into_inner();
        Ok(Response::new(self.checkpoint_stream(q.job_id, q.step)?))
    }

    async fn register_dataset(
        &self,
        req: Request<Streaming<pb::DatasetUpload>>,
    ) -> Result<Response<pb::Dataset>, Status> {
        let info = self.receive_dataset(req.into_inner()).await?;
        Ok(Response::new(pb::Dataset::from(&info)))
    }

    async fn list_datasets(
        &self,
        _: Request<pb::ListDatasetsRequest>,
    ) -> Result<Response<pb::ListDatasetsResponse>, Status> {
        let list = blobs::list_datasets(&self.store.read()?)?;
        Ok(Response::new(pb::ListDatasetsResponse {
            datasets: list.iter().map(|d| pb::Dataset::from(&d.info())).collect(),
        }))
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let list = workers::list(&self.store.read()?)?;
        Ok(Response::new(pb::ListWorkersResponse { workers: list.iter().map(pb::WorkerInfo::from).collect() }))
    }

    async fn get_fits(&self, req: Request<pb::GetFitsRequest>) -> Result<Response<pb::Fits>, Status> {
        let key = req.into_inner().sweep;
        let s = sweeps::find(&self.store.read()?, &key)?;
        let f = self.fits.get_or_compute(&self.store, self.cfg.clock.now_ms(), s.id).await?;
        Ok(Response::new(pb::Fits {
            report_json: f.report_json().unwrap_or_default(),
            computed_ms: f.computed_ms,
            error: f.error.clone().unwrap_or_default(),
            points: f.points,
        }))
    }

    async fn get_logs(&self, req: Request<pb::GetLogsRequest>) -> Result<Response<pb::Logs>, Status> {
        let q = req.into_inner();
        let r = self.store.read()?;
        JobRecord::load(&r, q.job_id)?;
        let lines = crate::logs::read(&r, q.job_id, q.after_seq)?
            .into_iter()
            .map(|l| pb::LogLine { seq: l.seq, attempt: l.attempt, at_ms: l.at_ms, source: l.source, text: l.text })
            .collect();
        Ok(Response::new(pb::Logs { lines }))
    }
}

/// Log lines a failed job's status carries.
pub const LOG_TAIL: usize = 8;

/// A job's status, with why it waits when it is queued and no live slot can hold it, and a
/// failed job's last log lines.
pub fn status(
    r: &crate::store::Read,
    job: &JobRecord,
    slots: &[(String, u64)],
) -> Result<ladder_core::status::JobStatus> {
    let mut st = job.status();
    if job.state == ladder_core::JobState::Queued {
        st.waiting = ladder_core::placement::unplaceable(&job.device, job.memory_bytes, slots);
    }
    if job.state == ladder_core::JobState::Failed {
        st.log_tail = crate::logs::tail(r, job.id, LOG_TAIL)?;
    }
    Ok(st)
}

impl Coordinator {
    /// The slots of the workers heard from within three lease lengths.
    pub fn live_slots_at(&self, r: &crate::store::Read) -> Result<Vec<(String, u64)>> {
        self.live_slots(r)
    }

    fn live_slots(&self, r: &crate::store::Read) -> Result<Vec<(String, u64)>> {
        let horizon = i64::try_from(3 * self.ttl_ms()).unwrap_or(i64::MAX);
        workers::live_slots(r, self.now_ms().saturating_sub(horizon))
    }

    /// A submission: a resubmitted spec is answered from the store; a new one is planned on a
    /// blocking thread against a read of the datasets, then stored by one writer operation of
    /// inserts (the writer never plans).
    async fn submit(&self, spec: String, origin: String) -> Result<(crate::records::SweepRecord, bool)> {
        if let Some(rec) = sweeps::resubmitted(&self.store.read()?, &spec)? {
            return Ok((rec, false));
        }
        let store = self.store.clone();
        let planned = tokio::task::spawn_blocking(move || sweeps::plan(&store.read()?, &spec, &origin))
            .await
            .map_err(|e| CoordError::Server(format!("planning the sweep: {e}")))??;
        if self.cfg.refuse_unplaceable {
            let slots = self.live_slots(&self.store.read()?)?;
            for (index, jp) in planned.plan.jobs.iter().enumerate() {
                if let Some(why) = ladder_core::placement::unplaceable(&jp.config.device, jp.memory_bytes, &slots) {
                    return Err(CoordError::invalid(
                        "resources",
                        format!(
                            "job {} of the spec ({} layers × d_model {}, seed {}) cannot run on this machine's slots: {why}",
                            index + 1,
                            jp.shape.n_layer,
                            jp.shape.d_model,
                            jp.config.train.seed
                        ),
                    ));
                }
            }
        }
        let (planned, now) = (std::sync::Arc::new(planned), self.now_ms());
        self.store.write(move |txn| sweeps::insert(txn, &planned, now)).await
    }
}
