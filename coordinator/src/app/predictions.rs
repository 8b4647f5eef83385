//! Sealed targets' predictions. A sweep's targets (jobs of a `sealed = true` block) train and
//! store their points like any job, but no fit sees them, and every read of their data passes
//! one gate ([`App::unseal`]): refused until the sweep's predictions are locked.
//!
//! A lock fits the laws on every other job ([`ladder_analysis::sealed::lock_options`]) and
//! stores, for each target and each law, the prediction with its 95% prediction interval, the
//! naive baselines, and sha256 hashes of the options and of the fitted points. It is made by
//! itself when every job the fits use has ended, or on `ladder predict SWEEP --lock`. A lock may
//! be replaced until a target's point is first read after it (`revealed_ms`); from then on it
//! is final. `ladder predict SWEEP` and the page score each target that has succeeded.
use std::sync::Arc;

use ladder_analysis::inputs::best_val_loss;
use ladder_analysis::sealed::{
    Lock, LockCause, LockSummary, Predictions, Target, TargetScore, lock_options, predict_targets, scorable, score,
};
use ladder_analysis::{Report, fit_all};
use ladder_core::branch::BranchKind;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::summary::Summaries;
use super::{App, fits, sweeps};
use crate::error::{CoordError, Result};
use crate::records::{JobRecord, SweepRecord};
use crate::store::{Read, Store};
use crate::tables::{OPEN_JOBS, PREDICTION_LOCKS, Reader, from_json, to_json};

/// A sweep's lock as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockRecord {
    pub lock: Lock,
    /// When a target's point was first read after the lock; the lock is final from then on.
    pub revealed_ms: Option<i64>,
}

/// Sweep `sweep_id`'s lock, if it has one.
pub fn load<R: Reader>(r: &R, sweep_id: u64) -> Result<Option<LockRecord>> {
    let t = r.table(PREDICTION_LOCKS)?;
    let v = t.get(sweep_id)?;
    v.map(|v| from_json(v.value())).transpose()
}

fn save(txn: &redb::WriteTransaction, sweep_id: u64, rec: &LockRecord) -> Result<()> {
    txn.open_table(PREDICTION_LOCKS)?.insert(sweep_id, to_json(rec)?.as_slice())?;
    Ok(())
}

/// Whether sweep `s` is due its own lock: it has targets, no lock, and every job that is not a
/// target has ended.
pub fn lock_due<R: Reader>(r: &R, s: &SweepRecord) -> Result<bool> {
    if s.targets.is_empty() || load(r, s.id)?.is_some() {
        return Ok(false);
    }
    let open = r.table(OPEN_JOBS)?;
    for entry in open.range((s.id, 0)..=(s.id, u64::MAX))? {
        let (k, _) = entry?;
        if !s.targets.contains(&k.value().1) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The targets a lock predicts: every sealed job but a sealed trunk with cooldowns (its
/// constant-rate loss is no finished run's; its cooldowns are the targets).
fn scored_targets<R: Reader>(r: &R, s: &SweepRecord) -> Result<Vec<JobRecord>> {
    let all = s.targets.iter().map(|&id| JobRecord::load(r, id)).collect::<Result<Vec<_>>>()?;
    let trunks: std::collections::HashSet<u64> = all
        .iter()
        .filter_map(|j| j.branch.filter(|b| matches!(b.kind, BranchKind::Cooldown { .. })).map(|b| b.parent))
        .collect();
    Ok(all.into_iter().filter(|j| !trunks.contains(&j.id)).collect())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Fits sweep `s` without its targets and predicts each (blocking: run it off the runtime).
pub fn compute(r: &Read, s: &SweepRecord, summaries: &Summaries, cause: LockCause, now_ms: i64) -> Result<Lock> {
    let all_tokens = fits::all_tokens(r, s)?;
    let (inputs, _) = fits::sweep_inputs(r, s, summaries, all_tokens)?;
    let targets: Vec<Target> = scored_targets(r, s)?.iter().map(|j| Target::of(&j.status(), all_tokens)).collect();
    let opts = lock_options();
    // Dropped once: `fit_all` finds nothing more to drop.
    let fitted = inputs.deep_enough(opts.min_layers());
    let report: Report = fit_all(&fitted, &opts)
        .map_err(|e| CoordError::Sealed(format!("sweep {}: its predictions cannot be locked yet: {e}", s.name)))?;
    let targets = predict_targets(&inputs, &report, &targets);
    // What the backtest said of each law when it locked; a sweep too small for one locks without.
    let backtest = match ladder_analysis::backtest::backtest(&fitted, &report, &opts, fit_all) {
        Ok(rows) => ladder_analysis::backtest::record(&rows),
        Err(e) => {
            tracing::info!(sweep = %s.name, "locked without a backtest: {e}");
            Vec::new()
        }
    };
    if targets.iter().all(|t| t.laws.is_empty()) {
        return Err(CoordError::Sealed(format!(
            "sweep {}: no fitted law takes its targets' N, D, C or S yet, so there is nothing to lock",
            s.name
        )));
    }
    Ok(Lock {
        locked_ms: now_ms,
        cause,
        options_sha256: sha256_hex(format!("{opts:?}").as_bytes()),
        // The runs the fits used: without the sizes they leave out.
        points_sha256: sha256_hex(&serde_json::to_vec(&(&fitted.runs, &fitted.windows))?),
        fitted_runs: fitted.runs.len(),
        additivity: report.additivity.clone(),
        targets,
        backtest,
    })
}

/// Stores `lock` as sweep `sweep_id`'s. A revealed lock is final; an automatic lock never
/// replaces one already there. Returns the lock now stored.
pub fn put(txn: &redb::WriteTransaction, sweep_id: u64, lock: &Lock) -> Result<LockRecord> {
    match load(txn, sweep_id)? {
        Some(old) if old.revealed_ms.is_some() => Err(final_lock(sweep_id, &old)),
        Some(old) if lock.cause == LockCause::FitsEnded => Ok(old),
        _ => {
            let rec = LockRecord { lock: lock.clone(), revealed_ms: None };
            save(txn, sweep_id, &rec)?;
            Ok(rec)
        }
    }
}

fn final_lock(sweep_id: u64, rec: &LockRecord) -> CoordError {
    CoordError::Sealed(format!(
        "sweep {sweep_id}'s predictions were locked at {} ms and a target's points have been read since ({} ms): the lock is final",
        rec.lock.locked_ms,
        rec.revealed_ms.unwrap_or_default()
    ))
}

/// Fits sweep `key` and stores its lock with `cause` (off the runtime); an automatic lock
/// (`FitsEnded`) only when [`lock_due`]. Returns the sweep's id when it locked.
async fn lock_now(
    store: &Store,
    live: &Arc<fits::LiveFits>,
    key: String,
    cause: LockCause,
    now_ms: i64,
) -> Result<Option<u64>> {
    let (st, live, what) = (store.clone(), live.clone(), key.clone());
    let lock = tokio::task::spawn_blocking(move || -> Result<Option<(u64, Lock)>> {
        let r = st.read()?;
        let s = sweeps::find(&r, &key)?;
        if cause == LockCause::FitsEnded && !lock_due(&r, &s)? {
            return Ok(None);
        }
        Ok(Some((s.id, compute(&r, &s, &live.summaries, cause, now_ms)?)))
    })
    .await
    .map_err(|e| CoordError::Server(format!("locking sweep {what}'s predictions: {e}")))??;
    let Some((id, lock)) = lock else { return Ok(None) };
    store.write(move |txn| put(txn, id, &lock)).await?;
    Ok(Some(id))
}

/// Locks sweep `sweep_id` by itself when it is due (see [`lock_due`]); returns whether it did.
pub async fn lock_if_due(store: &Store, live: &Arc<fits::LiveFits>, sweep_id: u64, now_ms: i64) -> Result<bool> {
    let locked = lock_now(store, live, sweep_id.to_string(), LockCause::FitsEnded, now_ms).await?.is_some();
    if locked {
        tracing::info!(sweep = sweep_id, "predictions locked: every job the fits use has ended");
    }
    Ok(locked)
}

impl App {
    /// The gate every read of a job's points, charts, logs and checkpoints passes: a target's
    /// data is refused until its sweep's predictions are locked; the first read after the lock
    /// marks it revealed (the lock is final from then on).
    pub async fn unseal(&self, job_id: u64) -> Result<()> {
        let r = self.store.read()?;
        let job = JobRecord::load(&r, job_id)?;
        if !job.sealed {
            return Ok(());
        }
        match load(&r, job.sweep_id)? {
            None => {
                let name = sweeps::find(&r, &job.sweep_id.to_string()).map(|s| s.name).unwrap_or_default();
                Err(CoordError::Sealed(format!(
                    "job {job_id} is a sealed target of sweep {name}: its points are withheld until the sweep's predictions are locked (by itself once every other job has ended, or `ladder predict {name} --lock`)"
                )))
            }
            Some(rec) if rec.revealed_ms.is_some() => Ok(()),
            Some(_) => {
                drop(r);
                self.reveal(job.sweep_id).await.map(|_| ())
            }
        }
    }

    /// Marks sweep `sweep_id`'s lock revealed (once); returns when it was.
    async fn reveal(&self, sweep_id: u64) -> Result<Option<i64>> {
        let now = self.now_ms();
        self.store
            .write(move |txn| {
                let Some(mut rec) = load(txn, sweep_id)? else { return Ok(None) };
                if rec.revealed_ms.is_none() {
                    rec.revealed_ms = Some(now);
                    save(txn, sweep_id, &rec)?;
                }
                Ok(rec.revealed_ms)
            })
            .await
    }

    /// Locks sweep `key`'s predictions now (replacing an earlier lock no target's point has
    /// been read after), and returns them.
    pub async fn lock_predictions(&self, key: &str) -> Result<Predictions> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, key)?;
        if s.targets.is_empty() {
            return Err(CoordError::invalid(
                "sweep",
                format!("sweep {} has no sealed targets: mark a [[grid]] block `sealed = true`", s.name),
            ));
        }
        if let Some(old) = load(&r, s.id)?
            && old.revealed_ms.is_some()
        {
            return Err(final_lock(s.id, &old));
        }
        drop(r);
        lock_now(&self.store, &self.fits, s.id.to_string(), LockCause::Asked, self.now_ms()).await?;
        tracing::info!(sweep = s.id, "predictions locked on request");
        self.predictions(&s.name).await
    }

    /// Sweep `key`'s targets with their locked predictions, each scored once it has succeeded
    /// (its measured loss from its curve summary, as the fits read a run's: the lock is final
    /// from then on).
    pub async fn predictions(&self, key: &str) -> Result<Predictions> {
        let r = self.store.read()?;
        let s = sweeps::find(&r, key)?;
        let rec = load(&r, s.id)?;
        let all_tokens = fits::all_tokens(&r, &s)?;
        let mut targets = Vec::with_capacity(s.targets.len());
        let mut read_any = false;
        for job in scored_targets(&r, &s)? {
            let id = job.id;
            let locked = rec.as_ref().and_then(|l| l.lock.targets.iter().find(|t| t.target.job == id));
            let measured = match locked {
                Some(_) if scorable(job.state) => {
                    best_val_loss(&fits::summary_of(&r, &self.fits.summaries, id)?.points())
                }
                _ => None,
            };
            read_any |= measured.is_some();
            targets.push(match locked {
                Some(p) => score(p, job.state, measured),
                None => TargetScore::unlocked(Target::of(&job.status(), all_tokens), job.state),
            });
        }
        drop(r);
        let mut revealed_ms = rec.as_ref().and_then(|l| l.revealed_ms);
        if read_any && revealed_ms.is_none() {
            revealed_ms = self.reveal(s.id).await?;
        }
        Ok(Predictions {
            sweep_id: s.id,
            sweep: s.name.clone(),
            lock: rec.as_ref().map(|l| LockSummary::from(&l.lock)),
            revealed_ms,
            targets,
        })
    }
}
