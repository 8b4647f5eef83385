//! Live fits: each sweep's laws, refitted off the store's writer while someone watches it (a page
//! open on it, `GetFits`, `ladder fit` on a running sweep, within the last [`WATCH`]) and once
//! when it ends. A fit reads each job's curve summary ([`super::summary`]), never every point,
//! so its memory grows with jobs, not points.
//!
//! A change to a sweep (a point stored, a job ended) marks it; a background task refits marked,
//! watched sweeps at most every [`PERIOD`], one at a time, with [`BOOTSTRAP`] resamples (an
//! ended sweep's fit adds the hold-out of its largest size). Its CPU
//! budget: after a fit that took t seconds it waits at least 3t before the next. A sweep whose
//! last job ends is refitted at once. Requests that find no current fit wait for one fit, not
//! one each; fits and summaries of sweeps nobody has watched for [`FORGET`] are dropped.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ladder_analysis::{Inputs, JobCurve, Options, fit_all};
use ladder_core::status::JobStatus;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::summary::{CurveSummary, Summaries};
use super::{attempts, blobs, sweeps};
use crate::error::{CoordError, Result};
use crate::records::SweepRecord;
use crate::store::{Read, Store};

/// Shortest time between two refits of one sweep.
pub const PERIOD: Duration = Duration::from_secs(2);
/// Bootstrap resamples of a live fit (`ladder fit` draws 200).
pub const BOOTSTRAP: usize = 50;
/// A sweep counts as watched this long after someone last asked for its fits.
pub const WATCH: Duration = Duration::from_secs(300);
/// A sweep's fit and summaries are dropped once nobody has asked for them this long.
pub const FORGET: Duration = Duration::from_secs(1800);

/// One sweep's fits as the page and `GetFits` serve them.
#[derive(Debug, Clone, Serialize)]
pub struct SweepFits {
    pub sweep_id: u64,
    pub report: Option<serde_json::Value>,
    /// Unix milliseconds when the fit began.
    pub computed_ms: i64,
    /// How long it took.
    pub took_ms: u64,
    /// Points the fit summarised.
    pub points: u64,
    /// Why there is no report (too few points, say).
    pub error: Option<String>,
    /// The sweep's changes the fit saw (see [`LiveFits::mark`]).
    #[serde(skip)]
    pub generation: u64,
}

impl SweepFits {
    pub fn report_json(&self) -> Option<String> {
        self.report.as_ref().map(|r| r.to_string())
    }
}

/// Job `job`'s stored curve, summarised in `s`, read a page at a time.
pub fn summarise(r: &Read, job: u64, mut s: CurveSummary) -> Result<CurveSummary> {
    let mut after = 0;
    loop {
        let (page, more) = attempts::curve(r, job, after, attempts::CURVE_PAGE)?;
        page.iter().for_each(|p| s.push(p));
        match more {
            Some(m) => after = m,
            None => return Ok(s),
        }
    }
}

/// A job's summary: the one held, else built from its stored curve.
pub fn summary_of(r: &Read, summaries: &Summaries, job: u64) -> Result<CurveSummary> {
    summaries.get_or_build(job, || summarise(r, job, CurveSummary::default()))
}

/// The training tokens of sweep `s`'s dataset (D of a job that uses them all).
pub fn all_tokens(r: &Read, s: &SweepRecord) -> Result<Option<u64>> {
    Ok(blobs::dataset_by_sha(r, &s.dataset_sha256)?.map(|d| d.train_bytes / 2))
}

/// A sweep's jobs (with their configs) and curve summaries, as the analysis takes them, and the
/// points summarised; `all_tokens` from [`all_tokens`]. Sealed targets are left out, each named
/// with why.
pub fn sweep_inputs(
    r: &Read,
    s: &SweepRecord,
    summaries: &Summaries,
    all_tokens: Option<u64>,
) -> Result<(Inputs, u64)> {
    let mut jobs: Vec<JobStatus> = Vec::with_capacity(s.job_ids.len());
    let mut curves = Vec::with_capacity(s.job_ids.len());
    let mut points = 0;
    let mut targets = Vec::new();
    for j in sweeps::jobs_of(r, s)? {
        if j.sealed {
            targets.push(j.id);
            continue;
        }
        let summary = summary_of(r, summaries, j.id)?;
        points += summary.count;
        jobs.push(j.with_config(r)?.status());
        curves.push(summary.points());
    }
    let pairs: Vec<JobCurve<'_>> = jobs.iter().zip(&curves).map(|(job, points)| JobCurve { job, points }).collect();
    let mut inputs = Inputs::from_jobs(format!("sweep {}", s.name), &pairs, all_tokens);
    inputs.excluded.extend(targets.into_iter().map(|job| ladder_analysis::inputs::Excluded {
        job,
        reason: "a sealed target: no fit sees it (`ladder predict` scores it)".into(),
    }));
    Ok((inputs, points))
}

/// Fits one sweep now (blocking: run it off the runtime).
fn compute(store: &Store, summaries: &Summaries, sweep_id: u64, now_ms: i64, generation: u64) -> Result<SweepFits> {
    let r = store.read()?;
    let s = sweeps::find(&r, &sweep_id.to_string())?;
    let (inputs, points) = sweep_inputs(&r, &s, summaries, all_tokens(&r, &s)?)?;
    drop(r);
    let began = Instant::now();
    let opts = Options { bootstrap: BOOTSTRAP, ..Options::default() };
    // Once for the fits and the hold-out (each would otherwise copy the inputs to drop the
    // same 1-layer sizes).
    let inputs = inputs.deep_enough(opts.min_layers());
    let mut fitted = fit_all(&inputs, &opts);
    // A sweep that has ended adds the hold-out of its largest size beside the naive guesses (the
    // page's hold-out table); one too small for a hold-out goes without.
    if let Ok(rep) = &mut fitted
        && s.state != ladder_core::SweepState::Running
    {
        rep.holdout = ladder_analysis::holdout::holdout(&inputs, rep, &opts, 1, fit_all).unwrap_or_default();
    }
    let (report, error) = match fitted {
        Ok(rep) => (Some(serde_json::to_value(&rep)?), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let took_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(SweepFits { sweep_id, report, computed_ms: now_ms, took_ms, points, error, generation })
}

/// What the live fits know of one sweep.
#[derive(Debug, Default)]
struct SweepState {
    fits: Option<Arc<SweepFits>>,
    /// Bumped by every change to the sweep.
    generation: u64,
    /// When someone last asked for its fits.
    watched: Option<Instant>,
}

/// Every sweep's latest fits, their curve summaries, and which sweeps changed since.
#[derive(Debug)]
pub struct LiveFits {
    sweeps: Mutex<HashMap<u64, SweepState>>,
    pub summaries: Summaries,
    /// Fits computed so far.
    pub computed: AtomicU64,
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
            sweeps: Mutex::default(),
            summaries: Summaries::default(),
            computed: AtomicU64::new(0),
            changed: broadcast::channel(64).0,
            busy: tokio::sync::Mutex::new(()),
            ended: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl LiveFits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SweepState>> {
        self.sweeps.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sweep `id` changed: its fits are due.
    pub fn mark(&self, sweep_id: u64) {
        self.lock().entry(sweep_id).or_default().generation += 1;
    }

    /// Someone is looking at sweep `id`'s fits: it is refitted as it changes, for [`WATCH`].
    pub fn watch(&self, sweep_id: u64) {
        self.lock().entry(sweep_id).or_default().watched = Some(Instant::now());
    }

    /// A job of sweep `id` ended: when it was the sweep's last, the final fit skips the wait.
    pub fn job_ended(&self, sweep_id: u64) {
        self.mark(sweep_id);
        self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(sweep_id);
        self.wake.notify_one();
    }

    /// The sweeps whose jobs ended lately, and of those the ones with no job left to run.
    fn finished_sweeps(&self, store: &Store) -> (Vec<u64>, Vec<u64>) {
        let ended: Vec<u64> =
            std::mem::take(&mut *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                .into_iter()
                .collect();
        let Ok(r) = store.read() else { return (ended, vec![]) };
        let done = ended
            .iter()
            .copied()
            .filter(|id| {
                let counts = sweeps::find(&r, &id.to_string()).and_then(|s| sweeps::counts(&r, &s));
                counts.is_ok_and(|c| c.queued + c.running + c.pending == 0)
            })
            .collect();
        (ended, done)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SweepFits>> {
        self.changed.subscribe()
    }

    /// The sweep's fits if they saw its latest change.
    fn current(&self, sweep_id: u64) -> Option<Arc<SweepFits>> {
        let g = self.lock();
        let st = g.get(&sweep_id)?;
        st.fits.clone().filter(|f| f.generation == st.generation)
    }

    /// Refits sweep `id` now (unless a fit that saw its latest change finished while this one
    /// waited its turn); gives up at `shutdown`, leaving the fit to finish on its own.
    async fn refit(
        self: &Arc<Self>,
        store: &Store,
        sweep_id: u64,
        now_ms: i64,
        shutdown: &CancellationToken,
    ) -> Result<Arc<SweepFits>> {
        let _one = tokio::select! {
            g = self.busy.lock() => g,
            _ = shutdown.cancelled() => return Err(CoordError::Shutdown),
        };
        if let Some(f) = self.current(sweep_id) {
            return Ok(f);
        }
        let generation = self.lock().entry(sweep_id).or_default().generation;
        let (st, me) = (store.clone(), self.clone());
        let task = tokio::task::spawn_blocking(move || compute(&st, &me.summaries, sweep_id, now_ms, generation));
        let f = tokio::select! {
            f = task => f.map_err(|e| CoordError::Server(format!("fitting sweep {sweep_id}: {e}")))??,
            _ = shutdown.cancelled() => return Err(CoordError::Shutdown),
        };
        self.computed.fetch_add(1, Ordering::Relaxed);
        let f = Arc::new(f);
        {
            let mut g = self.lock();
            let st = g.entry(sweep_id).or_default();
            st.fits = Some(f.clone());
            // A sweep fitted because it ended keeps its fit a while, watched or not.
            st.watched.get_or_insert_with(Instant::now);
        }
        let _ = self.changed.send(f.clone());
        Ok(f)
    }

    /// The sweep's fits, which counts as watching it: the current ones, else the latest while
    /// a newer one is due (the refit loop is on it), else fitted now.
    pub async fn get_or_compute(
        self: &Arc<Self>,
        store: &Store,
        now_ms: i64,
        sweep_id: u64,
        shutdown: &CancellationToken,
    ) -> Result<Arc<SweepFits>> {
        self.watch(sweep_id);
        if let Some(f) = self.current(sweep_id) {
            return Ok(f);
        }
        let latest = self.lock().get(&sweep_id).and_then(|s| s.fits.clone());
        match latest {
            Some(f) => {
                self.wake.notify_one();
                Ok(f)
            }
            None => self.refit(store, sweep_id, now_ms, shutdown).await,
        }
    }

    /// The sweeps due a refit: changed since their last fit and watched within [`WATCH`]. Drops
    /// the fits and summaries of sweeps nobody asked for within [`FORGET`].
    fn due(&self, store: &Store) -> Vec<u64> {
        let mut forgotten = Vec::new();
        let due = {
            let mut g = self.lock();
            let now = Instant::now();
            g.retain(|id, st| {
                let keep = st.watched.is_some_and(|w| now.duration_since(w) < FORGET);
                if !keep && st.fits.is_some() {
                    forgotten.push(*id);
                }
                keep || st.fits.is_none()
            });
            g.iter()
                .filter(|(_, st)| {
                    st.watched.is_some_and(|w| now.duration_since(w) < WATCH)
                        && st.fits.as_ref().is_none_or(|f| f.generation != st.generation)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        if let Ok(r) = store.read() {
            for id in forgotten {
                if let Ok(s) = sweeps::find(&r, &id.to_string()) {
                    self.summaries.forget_all(&s.job_ids);
                }
            }
        }
        due
    }

    /// Refits the changed, watched sweeps until `shutdown`, within the budget the module states;
    /// a sweep whose last job just ended is refitted at once (one fit per sweep, outside the
    /// budget, watched or not).
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
                let (st, me) = (store.clone(), self.clone());
                let (ended, done) =
                    tokio::task::spawn_blocking(move || me.finished_sweeps(&st)).await.unwrap_or_default();
                // A sweep whose last fitted job ended locks its targets' predictions (the lock
                // checks whether it is due).
                for id in ended {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        locked = super::predictions::lock_if_due(&store, &self, id, clock.now_ms()) => {
                            if let Err(e) = locked {
                                tracing::warn!(sweep = id, "locking the predictions: {e}");
                            }
                        }
                    }
                }
                for id in done {
                    match self.refit(&store, id, clock.now_ms(), &shutdown).await {
                        Err(CoordError::Shutdown) => return,
                        Err(e) => tracing::warn!(sweep = id, "live fits: {e}"),
                        Ok(_) => {}
                    }
                }
            }
            let (st, me) = (store.clone(), self.clone());
            let due = tokio::task::spawn_blocking(move || me.due(&st)).await.unwrap_or_default();
            let began = Instant::now();
            for id in due {
                match self.refit(&store, id, clock.now_ms(), &shutdown).await {
                    Err(CoordError::Shutdown) => return,
                    Err(e) => tracing::warn!(sweep = id, "live fits: {e}"),
                    Ok(_) => {}
                }
            }
            wait = PERIOD.max(began.elapsed() * 3);
        }
    }
}
