//! Checkpoint retention: which of a job's checkpoints its sweep's policy
//! (`ladder_core::retention::Retention`) keeps, and why ([`reasons`]), and the deletion of the
//! rest ([`collect`]), run in the same transaction as whatever changed the answer: a new
//! checkpoint, a job or a branch that ended.
//!
//! Kept, whatever the policy says: the checkpoint a running attempt resumed from, and every
//! checkpoint a branch forks from until that branch has ended. A job that has not succeeded
//! keeps its newest `keep_latest` (at least one: where a retry resumes); a succeeded one its
//! last (`keep_final`), and either its `keep_best` by validation loss at their step.
use std::collections::BTreeMap;

use redb::{ReadableTable, WriteTransaction};

use ladder_core::JobState;
use ladder_core::retention::Retention;

use super::blobs::{checkpoints, doom};
use crate::codec::decode_point;
use crate::error::Result;
use crate::records::{JobRecord, SweepRecord};
use crate::tables::{CHECKPOINTS, Reader, SWEEPS, from_json};

/// The policy of job `job`'s sweep (the default for a sweep that reads no longer).
pub fn policy<R: Reader>(r: &R, job: &JobRecord) -> Result<Retention> {
    let t = r.table(SWEEPS)?;
    let sweep = t.get(job.sweep_id)?.map(|v| from_json::<SweepRecord>(v.value())).transpose()?;
    Ok(sweep.map(|s| s.retention).unwrap_or_default())
}

/// For each of the job's checkpoints (by step, oldest first), why it is kept; an empty list:
/// it is not.
pub fn reasons<R: Reader>(r: &R, job: &JobRecord, p: &Retention) -> Result<BTreeMap<u64, Vec<String>>> {
    let steps: Vec<u64> = checkpoints(r, job.id)?.iter().map(|c| c.info.step).collect();
    let mut out: BTreeMap<u64, Vec<String>> = steps.iter().map(|&s| (s, Vec::new())).collect();
    let mut add = |step: u64, why: String| {
        if let Some(v) = out.get_mut(&step) {
            v.push(why);
        }
    };
    let succeeded = job.state == JobState::Succeeded;
    if !succeeded {
        for &s in steps.iter().rev().take(p.keep_latest as usize) {
            add(s, format!("newest {}", p.keep_latest));
        }
    } else if p.keep_final
        && let Some(&last) = steps.last()
    {
        add(last, "final".into());
    }
    if p.keep_best > 0 {
        let mut by_val: Vec<(f64, u64)> = Vec::new();
        for &s in &steps {
            let val =
                crate::curves::get(r, job.id, s)?.and_then(|v| decode_point(&v).ok()).and_then(|p| p.point.val_loss);
            if let Some(v) = val.filter(|v| v.is_finite()) {
                by_val.push((v, s));
            }
        }
        by_val.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (v, s) in by_val.into_iter().take(p.keep_best as usize) {
            add(s, format!("best {} by val loss ({v:.4})", p.keep_best));
        }
    }
    for &s in &steps {
        let open: Vec<String> = super::branches::children_at(r, job.id, s..=s)?
            .into_iter()
            .filter(|&(_, child)| JobRecord::load(r, child).is_ok_and(|c| !c.state.is_final()))
            .map(|(_, child)| child.to_string())
            .collect();
        if !open.is_empty() {
            add(s, format!("branch point of job {}", open.join(", ")));
        }
    }
    if job.state == JobState::Running && job.resumed_from_step > 0 {
        add(job.resumed_from_step, format!("resume point of attempt {}", job.attempt));
    }
    Ok(out)
}

/// Deletes the job's checkpoints that no reason keeps: their records now, their files once
/// this commit is durable. Returns how many.
pub fn collect(txn: &WriteTransaction, job_id: u64) -> Result<u64> {
    let mut job = JobRecord::load(txn, job_id)?;
    let p = policy(txn, &job)?;
    let doomed: Vec<u64> =
        reasons(txn, &job, &p)?.into_iter().filter(|(_, why)| why.is_empty()).map(|(s, _)| s).collect();
    if doomed.is_empty() {
        return Ok(0);
    }
    let stored = checkpoints(txn, job_id)?;
    let mut t = txn.open_table(CHECKPOINTS)?;
    for c in stored.iter().filter(|c| doomed.contains(&c.info.step)) {
        t.remove((job_id, c.info.step))?;
        doom(txn, &c.file)?;
    }
    drop(t);
    let n = doomed.len() as u64;
    job.checkpoints_deleted += n;
    job.save(txn)?;
    tracing::debug!(job = job_id, deleted = n, "retention deleted checkpoints");
    Ok(n)
}

/// [`collect`] for a job that just ended, and for its parent when it is a branch (the branch
/// point may be free now).
pub fn settled(txn: &WriteTransaction, job: &JobRecord) -> Result<()> {
    if !job.state.is_final() {
        return Ok(());
    }
    collect(txn, job.id)?;
    if let Some(b) = job.branch {
        collect(txn, b.parent)?;
    }
    Ok(())
}
