//! An attempt's end and what follows it: the lease index (the leases each worker holds), the
//! staging of uploads that only the current attempt may finish, a failure retried or final, the
//! branches a final job settles and the sweep that ends with its last job. State moves go
//! through [`super::state::set_state`].
use redb::{ReadableTable, WriteTransaction};

use super::state::set_state;
use crate::error::{CoordError, Result};
use crate::records::{Failure, JobRecord, JobState, SweepRecord, SweepState};
use crate::tables::{CHECKPOINT_STAGING, LEASES, OPEN_JOBS, SWEEPS, from_json, to_json};

/// Removes `job`'s lease from the index (call before the lease is cleared).
pub fn unindex_lease(txn: &WriteTransaction, job: &JobRecord) -> Result<()> {
    if let Some(l) = &job.lease {
        txn.open_table(LEASES)?.remove((l.worker_id.as_str(), job.id))?;
    }
    Ok(())
}

pub fn unindex_lease_of(txn: &WriteTransaction, worker_id: &str, job_id: u64) -> Result<()> {
    txn.open_table(LEASES)?.remove((worker_id, job_id))?;
    Ok(())
}

/// Fencing: the job's current attempt must be `attempt`, leased to `worker_id`.
pub fn current(job: &JobRecord, worker_id: &str, attempt: u32) -> Result<()> {
    let held = job.state == JobState::Running
        && job.attempt == attempt
        && job.lease.as_ref().is_some_and(|l| l.worker_id == worker_id);
    if held {
        Ok(())
    } else {
        Err(CoordError::Stale(format!(
            "job {} attempt {attempt} from worker {worker_id}: the current attempt is {} ({:?})",
            job.id, job.attempt, job.state
        )))
    }
}

/// Whether `attempt` ended `job` by reporting its whole curve. A heartbeat may list it after that
/// report (the beat left first): there is nothing to stop, and a stop would only read as a fence.
pub fn finished_by(job: &JobRecord, attempt: u32) -> bool {
    job.state == JobState::Succeeded && job.attempt == attempt
}

/// Ends an attempt as failed: requeued if retriable and restarts remain, else failed for good.
/// Returns whether it was requeued.
pub fn fail_attempt(txn: &WriteTransaction, job: &mut JobRecord, kind: Failure, message: String) -> Result<bool> {
    end_attempt(txn, job)?;
    let retried = kind.retriable() && job.restarts < job.max_restarts;
    if retried {
        job.restarts += 1;
    }
    set_state(txn, job, if retried { JobState::Queued } else { JobState::Failed })?;
    job.failure = Some((kind, message));
    Ok(retried)
}

/// Gives a job back to the queue without charging a restart (its worker released it, or never
/// got the lease).
pub fn release(txn: &WriteTransaction, job: &mut JobRecord) -> Result<()> {
    end_attempt(txn, job)?;
    set_state(txn, job, JobState::Queued)
}

/// The current attempt ends: its lease goes, and so does whatever upload it left staged.
pub fn end_attempt(txn: &WriteTransaction, job: &mut JobRecord) -> Result<()> {
    unindex_lease(txn, job)?;
    job.lease = None;
    clear_staged(txn, job.id, job.attempt.saturating_add(1))
}

/// After `job` changed: if it ended, its pending branches go with it, and the retention policy
/// runs for it (and for its parent, when it is a branch); the sweep is marked done once every
/// job has ended. Returns the branches this changed.
pub fn settle(txn: &WriteTransaction, job: &JobRecord) -> Result<Vec<JobRecord>> {
    let changed = super::branches::settle(txn, job)?;
    super::retention::settled(txn, job)?;
    for b in &changed {
        super::retention::settled(txn, b)?;
    }
    sweep_done(txn, job.sweep_id)?;
    Ok(changed)
}

/// Marks a sweep done once every job has ended.
fn sweep_done(txn: &WriteTransaction, sweep_id: u64) -> Result<()> {
    // One range lookup, not a read of every job: the open set holds the jobs still to end.
    if txn.open_table(OPEN_JOBS)?.range((sweep_id, 0)..=(sweep_id, u64::MAX))?.next().is_some() {
        return Ok(());
    }
    let Some(raw) = txn.open_table(SWEEPS)?.get(sweep_id)?.map(|v| v.value().to_vec()) else { return Ok(()) };
    let mut s: SweepRecord = from_json(&raw)?;
    if s.state != SweepState::Running {
        return Ok(());
    }
    s.state = SweepState::Done;
    txn.open_table(SWEEPS)?.insert(sweep_id, to_json(&s)?.as_slice())?;
    Ok(())
}

/// Drops what attempts of `job_id` before `current_attempt` left staged (their uploads can no
/// longer finish).
pub fn clear_staged(txn: &WriteTransaction, job_id: u64, current_attempt: u32) -> Result<()> {
    let mut t = txn.open_table(CHECKPOINT_STAGING)?;
    let keys: Vec<(u64, u32, u64, u32)> = t
        .range((job_id, 0, 0, 0)..(job_id, current_attempt, 0, 0))?
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for k in keys {
        t.remove(k)?;
    }
    Ok(())
}
