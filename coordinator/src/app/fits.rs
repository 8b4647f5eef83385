//! Live fits: each sweep's laws kept current while points arrive, off the store's writer. A
//! change to a sweep (a point stored, a job ended) marks it; a background task refits marked
//! sweeps at most every [`PERIOD`], one at a time, with [`BOOTSTRAP`] resamples. Its CPU budget:
//! after a fit that took t seconds it waits at least 3t before the next, so fitting takes at most
//! a quarter of the time of the cores the bootstrap uses, however large the sweeps grow. A sweep
//! whose last job ends is refitted at once: its final fit does not wait out the budget.
//! `GetFits`, the web page and `ladder fit` on a running sweep read the cached result.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ladder_analysis::{Inputs, JobCurve, Options, fit_all};
use ladder_core::status::{JobStatus, RecordedPoint};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{attempts, blobs, sweeps};
use crate::error::{CoordError, Result};
use crate::records::SweepRecord;
use crate::store::{Read, Store};

/// Shortest time between two refits of one sweep.
pub const PERIOD: Duration = Duration::from_secs(2);
/// Bootstrap resamples of a live fit (`ladder fit` draws 200).
pub const BOOTSTRAP: usize = 50;

/// One sweep's fits as the page and `GetFits` serve them.
#[derive(Debug, Clone, Serialize)]
pub struct SweepFits {
    pub sweep_id: u64,
    pub report: Option<serde_json::Value>,
    /// Unix milliseconds when the fit began.
    pub computed_ms: i64,
    /// How long it took.
    pub took_ms: u64,
    /// Points the fit saw.
    pub points: u64,
    /// Why there is no report (too few points, say).
    pub error: Option<String>,
}

impl SweepFits {
    pub fn report_json(&self) -> Option<String> {
        self.report.as_ref().map(|r| r.to_string())
    }
}

/// A sweep's jobs (with their configs) and curves, as the analysis takes them.
pub fn sweep_inputs(r: &Read, s: &SweepRecord) -> Result<(Inputs, u64)> {
    let all_tokens = blobs::dataset_by_sha(r, &s.dataset_sha256)?.map(|d| d.train_bytes / 2);
    let mut jobs: Vec<JobStatus> = Vec::new();
    let mut curves: Vec<Vec<RecordedPoint>> = Vec::new();
    let mut points = 0;
    for j in sweeps::jobs_of(r, s)? {
        let j = j.with_config(r)?;
        let mut curve = Vec::new();
        let mut after = 0;
        loop {
            let (page, more) = attempts::curve(r, j.id, after, attempts::CURVE_PAGE_MAX)?;
            curve.extend(page);
            match more {
                Some(m) => after = m,
                None => break,
            }
        }
        points += curve.len() as u64;
        jobs.push(j.status());
        curves.push(curve);
    }
    let pairs: Vec<JobCurve<'_>> = jobs.iter().zip(&curves).map(|(job, points)| JobCurve { job, points }).collect();
    Ok((Inputs::from_jobs(format!("sweep {}", s.name), &pairs, all_tokens), points))
}

/// Fits one sweep now (blocking: run it off the runtime).
pub fn compute(store: &Store, sweep_id: u64, now_ms: i64) -> Result<SweepFits> {
    let r = store.read()?;
    let s = sweeps::find(&r, &sweep_id.to_string())?;
    let (inputs, points) = sweep_inputs(&r, &s)?;
    drop(r);
    let began = Instant::now();
    let opts = Options { bootstrap: BOOTSTRAP, ..Options::default() };
    let (report, error) = match fit_all(&inputs, &opts) {
        Ok(rep) => (Some(serde_json::to_value(&rep)?), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let took_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(SweepFits { sweep_id, report, computed_ms: now_ms, took_ms, points, error })
}

/// The cache of every sweep's latest fits, and the sweeps changed since.
#[derive(Debug)]
pub struct LiveFits {
    cache: Mutex<HashMap<u64, Arc<SweepFits>>>,
    dirty: Mutex<HashSet<u64>>,
    changed: broadcast::Sender<Arc<SweepFits>>,
    /// One fit at a time.
    busy: tokio::sync::Mutex<()>,
    /// Sweeps a job of which just ended: if none of their jobs is left, their last fit is due now.
    ended: Mutex<HashSet<u64>>,
    wake: tokio::sync::Notify,
}

impl Default for LiveFits {
    fn default() -> Self {
        Self {
            cache: Mutex::default(),
            dirty: Mutex::default(),
            changed: broadcast::channel(64).0,
            busy: tokio::sync::Mutex::new(()),
            ended: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl LiveFits {
    /// Sweep `id` changed: its fits are due.
    pub fn mark(&self, sweep_id: u64) {
        self.dirty.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(sweep_id);
    }

    /// A job of sweep `id` ended: when it was the sweep's last, the final fit skips the wait.
    pub fn job_ended(&self, sweep_id: u64) {
        self.mark(sweep_id);
        self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(sweep_id);
        self.wake.notify_one();
    }

    /// Of the sweeps whose jobs ended lately, those with no job left to run.
    fn finished_sweeps(&self, store: &Store) -> Vec<u64> {
        let ids: Vec<u64> = std::mem::take(&mut *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
            .into_iter()
            .collect();
        let Ok(r) = store.read() else { return vec![] };
        ids.into_iter()
            .filter(|id| {
                let counts = sweeps::find(&r, &id.to_string()).and_then(|s| sweeps::counts(&r, &s));
                counts.is_ok_and(|c| c.queued + c.running + c.pending == 0)
            })
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SweepFits>> {
        self.changed.subscribe()
    }

    fn cached(&self, sweep_id: u64) -> Option<Arc<SweepFits>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&sweep_id).cloned()
    }

    async fn refit(&self, store: &Store, sweep_id: u64, now_ms: i64) -> Result<Arc<SweepFits>> {
        let _one = self.busy.lock().await;
        let st = store.clone();
        let f = tokio::task::spawn_blocking(move || compute(&st, sweep_id, now_ms))
            .await
            .map_err(|e| CoordError::Server(format!("fitting sweep {sweep_id}: {e}")))??;
        let f = Arc::new(f);
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(sweep_id, f.clone());
        let _ = self.changed.send(f.clone());
        Ok(f)
    }

    /// The sweep's latest fits; fitted now when there are none yet.
    pub async fn get_or_compute(&self, store: &Store, now_ms: i64, sweep_id: u64) -> Result<Arc<SweepFits>> {
        match self.cached(sweep_id) {
            Some(f) => Ok(f),
            None => self.refit(store, sweep_id, now_ms).await,
        }
    }

    /// Refits the changed sweeps until `shutdown`, within the budget the module states; a sweep
    /// whose last job just ended is refitted at once (one fit per sweep, outside the budget).
    pub async fn run(self: Arc<Self>, store: Store, clock: Arc<dyn crate::clock::Clock>, shutdown: CancellationToken) {
        let mut wait = PERIOD;
        loop {
            let until = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(until) => break,
                    _ = self.wake.notified() => {}
                }
                let st = store.clone();
                let me = self.clone();
                let done = tokio::task::spawn_blocking(move || me.finished_sweeps(&st)).await.unwrap_or_default();
                for id in done {
                    self.dirty.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
                    if let Err(e) = self.refit(&store, id, clock.now_ms()).await {
                        tracing::warn!(sweep = id, "live fits: {e}");
                    }
                }
            }
            let due: Vec<u64> =
                std::mem::take(&mut *self.dirty.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                    .into_iter()
                    .collect();
            let began = Instant::now();
            for id in due {
                if let Err(e) = self.refit(&store, id, clock.now_ms()).await {
                    tracing::warn!(sweep = id, "live fits: {e}");
                }
            }
            wait = PERIOD.max(began.elapsed() * 3);
        }
    }
}
