//! Branches at the coordinator. A branch is `Pending` until its parent stores the checkpoint it
//! forks from, then `Queued`. A parent that fails, is cancelled, or ends without that checkpoint
//! takes its pending branches with it, each with a reason that names the parent. The retention
//! policy keeps the checkpoint a branch forks from until the branch has ended, and once a branch
//! has forked from it, no re-upload replaces it ([`forked_at`]).
use redb::{ReadableTable, WriteTransaction};

use super::state::set_state;
use crate::error::Result;
use crate::records::{Failure, JobRecord, JobState};
use crate::tables::{BRANCHES, CHECKPOINTS, Reader};

/// Records that `child` forks from `parent`'s checkpoint at `step`.
pub fn index(txn: &WriteTransaction, parent: u64, step: u64, child: u64) -> Result<()> {
    txn.open_table(BRANCHES)?.insert((parent, step, child), ())?;
    Ok(())
}

pub(super) fn children_at<R: Reader>(
    r: &R,
    parent: u64,
    steps: std::ops::RangeInclusive<u64>,
) -> Result<Vec<(u64, u64)>> {
    let t = r.table(BRANCHES)?;
    let mut out = Vec::new();
    for row in t.range((parent, *steps.start(), 0)..=(parent, *steps.end(), u64::MAX))? {
        let (k, _) = row?;
        let (_, step, child) = k.value();
        out.push((step, child));
    }
    Ok(out)
}

/// Whether a branch has forked from `parent`'s checkpoint at `step` (left `pending`): that
/// checkpoint is then immutable.
pub fn forked_at<R: Reader>(r: &R, parent: u64, step: u64) -> Result<bool> {
    for (_, child) in children_at(r, parent, step..=step)? {
        if JobRecord::load(r, child)?.state != JobState::Pending {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The parent's checkpoint at `step` is stored: its pending branches there join the queue.
pub fn release(txn: &WriteTransaction, parent: u64, step: u64) -> Result<Vec<JobRecord>> {
    let mut out = Vec::new();
    for (_, child) in children_at(txn, parent, step..=step)? {
        let mut j = JobRecord::load(txn, child)?;
        if j.state == JobState::Pending {
            set_state(txn, &mut j, JobState::Queued)?;
            j.save(txn)?;
            out.push(j);
        }
    }
    Ok(out)
}

/// `job` has ended: each of its branches still pending fails (or is cancelled with it), and so
/// on down; returns every job this changed.
pub fn settle(txn: &WriteTransaction, job: &JobRecord) -> Result<Vec<JobRecord>> {
    let mut out = Vec::new();
    if !job.state.is_final() {
        return Ok(out);
    }
    let mut stack = vec![(job.id, job.state, job.progress.step)];
    while let Some((parent, state, ended_at)) = stack.pop() {
        for (step, child) in children_at(txn, parent, 0..=u64::MAX)? {
            let mut j = JobRecord::load(txn, child)?;
            if j.state != JobState::Pending {
                continue;
            }
            if txn.open_table(CHECKPOINTS)?.get((parent, step))?.is_some() {
                // Stored after all (a parent that succeeded): the branch can run.
                set_state(txn, &mut j, JobState::Queued)?;
                j.save(txn)?;
                out.push(j);
                continue;
            }
            let why = match state {
                JobState::Cancelled => None,
                JobState::Failed => Some(format!("its parent job {parent} failed before step {step}, where it forks")),
                _ if ended_at < step => Some(format!(
                    "its parent job {parent} ended at step {ended_at}, before step {step}, where it forks"
                )),
                _ => Some(format!(
                    "its parent job {parent} ended at step {ended_at} without storing its checkpoint at step {step}, where it forks (its upload failed: see `ladder logs {parent}`)"
                )),
            };
            let (to, message) = match why {
                None => (JobState::Cancelled, format!("its parent job {parent} was cancelled")),
                Some(m) => (JobState::Failed, m),
            };
            set_state(txn, &mut j, to)?;
            j.failure = Some((Failure::Parent, message));
            j.save(txn)?;
            stack.push((j.id, j.state, 0));
            out.push(j);
        }
    }
    Ok(out)
}
