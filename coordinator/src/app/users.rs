//! What users ask of the coordinator: sweeps (submit, find, list, cancel), jobs (list, get,
//! watch), curves, checkpoints, fits, logs, datasets and workers. Reads take one snapshot of
//! the store; writes go through its one writer.
use std::collections::HashSet;
use std::sync::Arc;

use ladder_core::JobState;
use ladder_core::status::{
    CheckpointInfo, CheckpointList, DatasetInfo, JobStatus, RecordedPoint, SweepStatus, WorkerStatus,
};
use tokio::sync::{broadcast, mpsc};

use super::fits::{self, SweepFits};
use super::logs::LogLine;
use super::summary::{ChartPoint, CurveSummary};
use super::views::job_status;
use super::{App, CURVE_PAGE, CURVE_PAGE_MAX, SWEEP_PAGE, attempts, blobs, logs, registry, retention, sweeps};
use crate::error::{CoordError, Result};
use crate::records::{JobRecord, SweepRecord};

/// A page of a listing and where the next one starts (None: the last page).
pub type Page<T> = (Vec<T>, Option<u64>);

impl App {
    /// A submission: a resubmitted spec is answered from the store; a new one is planned on a
    /// blocking thread against a read of the datasets, then stored by one writer operation of
    /// inserts (the writer never plans). Returns the sweep and whether it is new.
    pub async fn submit(&self, spec: String, origin: String) -> Result<(SweepStatus, bool)> {
        self.refuse_if_full("submitting a sweep")?;
        let (rec, created) = self.submit_record(spec, origin).await?;
        if created {
            tracing::info!(sweep = rec.id, name = %rec.name, jobs = rec.job_ids.len(), "sweep submitted");
            self.idle.queue_changed();
            self.work.notify_waiters();
        }
        Ok((sweeps::status(&self.store.read()?, &rec)?, created))
    }

    async fn submit_record(&self, spec: String, origin: String) -> Result<(SweepRecord, bool)> {
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
                if let Some(why) = ladder_core::placement::unplaceable(jp.config.device, jp.memory_bytes, &slots) {
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
        let (planned, now) = (Arc::new(planned), self.now_ms());
        self.store.write(move |txn| sweeps::insert(txn, &planned, now)).await
    }

    /// A sweep by name or id.
    pub fn sweep(&self, key: &str) -> Result<SweepStatus> {
        let r = self.store.read()?;
        sweeps::status(&r, &sweeps::find(&r, key)?)
    }

    /// The id of the sweep named (or numbered) `key`.
    pub fn sweep_id(&self, key: &str) -> Result<u64> {
        Ok(sweeps::find(&self.store.read()?, key)?.id)
    }

    /// Sweeps with id > `after_id`, at most `limit` (0: [`SWEEP_PAGE`]).
    pub fn sweeps(&self, after_id: u64, limit: usize) -> Result<Page<SweepStatus>> {
        let limit = if limit == 0 { SWEEP_PAGE } else { limit.min(SWEEP_PAGE) };
        let r = self.store.read()?;
        let (list, more) = sweeps::list(&r, after_id, limit)?;
        let out = list.iter().map(|s| sweeps::status(&r, s)).collect::<Result<_>>()?;
        Ok((out, more))
    }

    /// Sweeps older than `before_id` (0: the newest), newest first, at most `limit` (0:
    /// [`SWEEP_PAGE`]); and the id to ask before for the next page.
    pub fn newest_sweeps(&self, before_id: u64, limit: usize) -> Result<Page<SweepStatus>> {
        let limit = if limit == 0 { SWEEP_PAGE } else { limit.min(SWEEP_PAGE) };
        let r = self.store.read()?;
        let (list, more) = sweeps::list_newest(&r, before_id, limit)?;
        let out = list.iter().map(|s| sweeps::status(&r, s)).collect::<Result<_>>()?;
        Ok((out, more))
    }

    /// Cancels every job of a sweep that has not ended.
    pub async fn cancel(&self, key: String) -> Result<SweepStatus> {
        let (s, changed) = self.store.write(move |txn| sweeps::cancel(txn, &key)).await?;
        self.publish(&changed);
        sweeps::status(&self.store.read()?, &s)
    }

    /// Every job of a sweep, each with its config when `configs` (they are cold: read apart).
    pub fn jobs(&self, key: &str, configs: bool) -> Result<Vec<JobStatus>> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, key)?;
        let slots = self.live_slots(&r)?;
        let mut out = Vec::with_capacity(s.job_ids.len());
        for j in sweeps::jobs_of(&r, &s)? {
            let j = if configs { j.with_config(&r)? } else { j };
            out.push(job_status(&r, &j, &slots)?);
        }
        Ok(out)
    }

    /// One job, with its config.
    pub fn job(&self, id: u64) -> Result<JobStatus> {
        let r = self.store.read()?;
        let job = JobRecord::load(&r, id)?.with_config(&r)?;
        job_status(&r, &job, &self.live_slots(&r)?)
    }

    /// Whether job `id` exists.
    pub fn job_exists(&self, id: u64) -> Result<bool> {
        match JobRecord::load(&self.store.read()?, id) {
            Ok(_) => Ok(true),
            Err(CoordError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every job of a sweep, then each change as it happens, until every job has ended. A
    /// watcher that falls too far behind gets an error saying so, and the stream ends.
    pub fn watch(&self, key: &str) -> Result<mpsc::Receiver<Result<JobStatus>>> {
        let mut updates = self.subscribe_jobs(); // before the snapshot: no change is missed
        let r = self.store.read()?;
        let sweep = sweeps::find(&r, key)?;
        let snapshot = sweeps::jobs_of(&r, &sweep)?;
        drop(r);
        // The jobs still to end, kept from the updates themselves: no re-read per update.
        let mut open: HashSet<u64> = snapshot.iter().filter(|j| !j.state.is_final()).map(|j| j.id).collect();
        let (tx, rx) = mpsc::channel(256);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            for j in &snapshot {
                if tx.send(Ok(j.status())).await.is_err() {
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
                        if tx.send(Ok(j)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(CoordError::Lagged(format!("watcher fell {n} updates behind; watch again"))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(rx)
    }

    /// Points of job `id` with step > `after_step`, at most `limit` (0: [`CURVE_PAGE`]).
    pub fn curve(&self, id: u64, after_step: u64, limit: usize) -> Result<(Vec<RecordedPoint>, Option<u64>)> {
        let limit = if limit == 0 { CURVE_PAGE } else { limit.min(CURVE_PAGE_MAX) };
        let r = self.store.read()?;
        JobRecord::load(&r, id)?;
        attempts::curve(&r, id, after_step, limit)
    }

    /// Job `id`'s curve for a chart of the sweep: from its summary (built from the store when
    /// none is held), at most `max_points` points.
    pub fn chart(&self, id: u64, max_points: usize) -> Result<Vec<ChartPoint>> {
        let r = self.store.read()?;
        Ok(fits::summary_of(&r, &self.fits.summaries, id)?.chart(max_points))
    }

    /// Job `id`'s curve for its own chart: read from the store at `max_points` buckets.
    pub fn job_chart(&self, id: u64, max_points: usize) -> Result<Vec<ChartPoint>> {
        let r = self.store.read()?;
        JobRecord::load(&r, id)?;
        let s = fits::summarise(&r, id, CurveSummary::with_buckets(max_points as u64))?;
        Ok(s.chart(max_points))
    }

    /// The checkpoints a job keeps, oldest first, each with why; the policy; how many it deleted.
    pub fn checkpoints(&self, job_id: u64) -> Result<CheckpointList> {
        let r = self.store.read()?;
        let job = JobRecord::load(&r, job_id)?;
        let policy = retention::policy(&r, &job)?;
        let mut why = retention::reasons(&r, &job, &policy)?;
        let checkpoints = blobs::checkpoints(&r, job_id)?
            .into_iter()
            .map(|c| CheckpointInfo { kept: why.remove(&c.info.step).unwrap_or_default(), ..c.info })
            .collect();
        Ok(CheckpointList { job_id, checkpoints, policy, deleted: job.checkpoints_deleted })
    }

    /// A sweep's latest fits; fitted now when there are none yet. Asking counts as watching it:
    /// it is refitted as it changes for a while.
    pub async fn fits(&self, key: &str) -> Result<Arc<SweepFits>> {
        let id = self.sweep_id(key)?;
        self.fits.get_or_compute(&self.store, self.now_ms(), id, &self.shutdown).await
    }

    /// Lines of job `id`'s log after `after_seq`.
    pub fn logs(&self, id: u64, after_seq: u64) -> Result<Vec<LogLine>> {
        let r = self.store.read()?;
        JobRecord::load(&r, id)?;
        logs::read(&r, id, after_seq)
    }

    /// The newest `n` lines of job `id`'s log, newest first.
    pub fn newest_logs(&self, id: u64, n: usize) -> Result<Vec<LogLine>> {
        let r = self.store.read()?;
        JobRecord::load(&r, id)?;
        logs::newest(&r, id, n)
    }

    pub fn datasets(&self) -> Result<Vec<DatasetInfo>> {
        Ok(blobs::list_datasets(&self.store.read()?)?.iter().map(|d| d.info()).collect())
    }

    pub fn workers(&self) -> Result<Vec<WorkerStatus>> {
        registry::list(&self.store.read()?)
    }
}
