//! Attempts: fencing, heartbeats, and the events an attempt reports. Points are keyed by
//! (job, step); a point a newer attempt reports beyond the step it resumed from replaces what a
//! dead attempt left there, so a resumed curve is one trajectory. A job finishes only with its
//! whole curve, steps 1..S each once.
use std::ops::ControlFlow;

use redb::{ReadableTable, WriteTransaction};

pub const CURVE_PAGE_MAX: usize = 100_000;
/// Points read at a time when a whole curve is read in pages.
pub const CURVE_PAGE: usize = 10_000;

use ladder_core::attempt::AttemptEvent;
use ladder_core::status::{Progress, RecordedPoint};

use super::lifecycle::{current, end_attempt, fail_attempt, finished_by, release, settle, unindex_lease_of};
use super::state::set_state;
use crate::codec::{attempt_of, decode_point, encode_point};
use crate::curves::{self, Curves};
use crate::error::{CoordError, Result};
use crate::records::{Failure, JobRecord, JobState, WorkerRecord};
use crate::tables::{LEASES, Reader, WORKERS, from_json, to_json};

/// Persists a heartbeat: renews the leases of attempts that are still current (which must stop
/// is [`check_beat`]'s answer) and returns the jobs it released. A job leased to this worker half
/// a lease length ago that its heartbeats do not list (the Acquire reply was lost) goes back to
/// the queue, before its lease would expire, without a restart charged.
pub fn heartbeat(
    txn: &WriteTransaction,
    worker_id: &str,
    running: &[(u64, u32)],
    ttl_ms: u64,
    now: i64,
) -> Result<Vec<JobRecord>> {
    for &(job_id, attempt) in running {
        let mut job = match JobRecord::load(txn, job_id) {
            Ok(j) => j,
            Err(CoordError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if current(&job, worker_id, attempt).is_err() {
            continue;
        }
        if let Some(l) = job.lease.as_mut() {
            l.expires_ms = now + ttl_ms as i64;
        }
        job.save(txn)?;
    }
    // Leases this worker holds by the index but does not run.
    let mut released = Vec::new();
    let held: Vec<u64> = {
        let t = txn.open_table(LEASES)?;
        t.range((worker_id, 0)..=(worker_id, u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?
    };
    for job_id in held {
        if running.iter().any(|&(j, _)| j == job_id) {
            continue;
        }
        let mut job = match JobRecord::load(txn, job_id) {
            Ok(j) => j,
            Err(CoordError::NotFound(_)) | Err(CoordError::Storage(_)) => {
                txn.open_table(LEASES)?.remove((worker_id, job_id))?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let unclaimed = job.state == JobState::Running
            && job.lease.as_ref().is_some_and(|l| l.worker_id == worker_id && l.granted_ms + (ttl_ms as i64) / 2 < now);
        if unclaimed {
            tracing::warn!(job = job.id, attempt = job.attempt, worker = worker_id, "lease never taken up; requeued");
            release(txn, &mut job)?;
            job.save(txn)?;
            released.push(job);
        } else if job.state != JobState::Running || job.lease.as_ref().is_none_or(|l| l.worker_id != worker_id) {
            txn.open_table(LEASES)?.remove((worker_id, job_id))?;
        }
    }
    let mut workers = txn.open_table(WORKERS)?;
    let known = workers.get(worker_id)?.map(|v| v.value().to_vec());
    if let Some(w) = known {
        let mut w: WorkerRecord = from_json(&w)?;
        w.last_seen_ms = now;
        workers.insert(worker_id, to_json(&w)?.as_slice())?;
    }
    Ok(released)
}

/// A heartbeat checked on a read: the attempts to stop, those to renew, and whether the worker
/// holds a lease it did not list (the writer must then look: a lost Acquire reply).
#[derive(Debug, Default)]
pub struct Checked {
    pub stop: Vec<(u64, u32)>,
    pub renew: Vec<(u64, u32)>,
    pub unlisted: bool,
}

/// Checks a heartbeat without writing: which of `running` are current, which must stop (not the
/// one that finished its job: its report came first), and whether the lease index holds a job of
/// this worker that `running` does not list.
pub fn check_beat<R: Reader>(r: &R, worker_id: &str, running: &[(u64, u32)]) -> Result<Checked> {
    let mut out = Checked::default();
    for &(job_id, attempt) in running {
        match JobRecord::load(r, job_id) {
            Ok(job) if current(&job, worker_id, attempt).is_ok() => out.renew.push((job_id, attempt)),
            Ok(job) if finished_by(&job, attempt) => {}
            Ok(_) | Err(CoordError::NotFound(_)) => out.stop.push((job_id, attempt)),
            Err(e) => return Err(e),
        }
    }
    let t = r.table(LEASES)?;
    for row in t.range((worker_id, 0)..=(worker_id, u64::MAX))? {
        let (k, _) = row?;
        let job_id = k.value().1;
        if !running.iter().any(|&(j, _)| j == job_id) {
            out.unlisted = true;
            break;
        }
    }
    Ok(out)
}

/// What a report changed.
#[derive(Debug)]
pub struct Reported {
    /// Points newly stored (replays of the same attempt are not counted).
    pub stored: u32,
    /// Points refused for a step past the job's last (nothing of them is stored), and why.
    pub refused: u32,
    pub why: Option<String>,
    pub job: JobRecord,
    pub requeued: bool,
    /// Branches of the job that its end failed or cancelled.
    pub branches: Vec<JobRecord>,
}

/// Moves the job's hole-free prefix past every point stored right after it.
fn extend_contiguous(c: &mut Curves<'_>, job: &mut JobRecord) -> Result<()> {
    while c.contains(job.id, job.contiguous + 1)? {
        job.contiguous += 1;
    }
    Ok(())
}

/// Points stored for `job_id` at steps `from`+1..=`step` (a branch's curve starts after its
/// branch point), and the first step missing (if any).
fn coverage<R: Reader>(r: &R, job_id: u64, from: u64, step: u64) -> Result<(u64, Option<u64>)> {
    let (mut n, mut expect, mut hole) = (0u64, from + 1, None);
    curves::for_each(r, job_id, from + 1, step, |p| {
        let s = curves::step_of(p);
        if s != expect && hole.is_none() {
            hole = Some(expect);
        }
        expect = s + 1;
        n += 1;
        ControlFlow::Continue(())
    })?;
    if hole.is_none() && expect <= step {
        hole = Some(expect);
    }
    Ok((n, hole))
}

/// The attempt started from its checkpoint at `step` (or fresh: 0, a branch's branch point): the
/// job's curve and checkpoints past it belong to attempts whose trajectory this one abandons.
/// Their points go (so a curve is never stitched from two trajectories), the resume point and the
/// hole-free prefix fall back to `step`, and their checkpoints go too, but for one a branch has
/// forked from, which stays as it is.
fn restart_at(txn: &WriteTransaction, job: &mut JobRecord, attempt: u32, step: u64) -> Result<()> {
    job.resumed_from_step = step;
    {
        let mut c = Curves::open(txn)?;
        let stale = c.remove_after(job.id, step, |p| attempt_of(p) < attempt)?;
        if stale > 0 {
            tracing::info!(
                job = job.id,
                attempt,
                from = step,
                points = stale,
                "dropped an abandoned trajectory's points"
            );
        }
        job.contiguous = job.contiguous.min(step);
        let at = c.get(job.id, step)?.and_then(|v| decode_point(&v).ok());
        c.flush()?;
        job.progress = at.map_or_else(Progress::default, |p| Progress {
            step: p.point.step,
            tokens: p.point.tokens,
            train_loss: Some(p.point.train_loss),
            val_loss: p.point.val_loss,
            tokens_per_s: p.point.tokens_per_s,
        });
    }
    if job.checkpoint_step > step {
        for c in super::blobs::checkpoints(txn, job.id)?.into_iter().filter(|c| c.info.step > step) {
            if !super::branches::forked_at(txn, job.id, c.info.step)? {
                txn.open_table(crate::tables::CHECKPOINTS)?.remove((job.id, c.info.step))?;
                super::blobs::doom(txn, &c.file)?;
            }
        }
        job.checkpoint_step = step;
    }
    Ok(())
}

/// Stores an attempt's events. Stale attempts are refused before anything is written.
pub fn report(
    txn: &WriteTransaction,
    worker_id: &str,
    job_id: u64,
    attempt: u32,
    events: &[AttemptEvent],
) -> Result<Reported> {
    let mut job = JobRecord::load(txn, job_id)?;
    current(&job, worker_id, attempt)?;
    let (mut stored, mut refused, mut why) = (0, 0, None);
    let mut requeued = false;
    let mut ended = false;
    // Open across a run of points (one table open per report, not per point); closed before any
    // other event, whose handling may open it again.
    let mut curves: Option<Curves<'_>> = None;
    for ev in events {
        if ended {
            break;
        }
        if !matches!(ev, AttemptEvent::Point(_))
            && let Some(mut c) = curves.take()
        {
            c.flush()?;
        }
        match ev {
            AttemptEvent::Point(m) if m.step > job.total_steps => {
                refused += 1;
                why.get_or_insert_with(|| format!("step {} is past the job's last step, {}", m.step, job.total_steps));
            }
            AttemptEvent::Point(m) => {
                let c = match curves.as_mut() {
                    Some(c) => c,
                    None => curves.insert(Curves::open(txn)?),
                };
                // The old point wins when it is the same or a newer attempt's, or at or before
                // the resume point; a dead attempt's point past this attempt's resume point is
                // replaced.
                let p = RecordedPoint { point: m.clone(), attempt };
                let resumed = job.resumed_from_step;
                let keep_old = |old: &[u8]| !(attempt_of(old) < attempt && m.step > resumed);
                if c.put(job_id, &encode_point(&p), keep_old)? {
                    stored += 1;
                }
                if m.step == job.contiguous + 1 {
                    extend_contiguous(c, &mut job)?;
                }
                if m.step >= job.progress.step {
                    let val = m.val_loss.or(job.progress.val_loss);
                    job.progress = Progress {
                        step: m.step,
                        tokens: m.tokens,
                        train_loss: Some(m.train_loss),
                        val_loss: val,
                        tokens_per_s: m.tokens_per_s,
                    };
                }
            }
            AttemptEvent::Log { source, text, at_ms } => {
                super::logs::append(txn, &mut job, attempt, source, text, *at_ms)?;
            }
            AttemptEvent::Started { resumed_from_step } => restart_at(txn, &mut job, attempt, *resumed_from_step)?,
            AttemptEvent::Finished { step, .. } => {
                ended = true;
                let from = job.branch.map_or(0, |b| b.step);
                let (n, hole) = coverage(txn, job_id, from, *step)?;
                if let Some(missing) = hole {
                    let msg = format!(
                        "attempt {attempt} finished at step {step} but the curve holds {n} of its {} points (step {missing} is missing)",
                        step - from
                    );
                    tracing::error!(job = job_id, "{msg}");
                    requeued = fail_attempt(txn, &mut job, Failure::Crashed, msg)?;
                } else {
                    end_attempt(txn, &mut job)?;
                    set_state(txn, &mut job, JobState::Succeeded)?;
                    job.failure = None;
                }
            }
            AttemptEvent::Released { .. } => {
                ended = true;
                release(txn, &mut job)?;
                requeued = true;
            }
            AttemptEvent::Failed { kind: Failure::OutOfMemory, message, shared_device: true } => {
                // Not the job's own failure: it ran out beside other jobs on its GPU.
                ended = true;
                job.exclusive = true;
                job.failure =
                    Some((Failure::OutOfMemory, format!("{message} (beside other jobs on its GPU: retried alone)")));
                release(txn, &mut job)?;
                requeued = true;
            }
            AttemptEvent::Failed { kind, message, .. } => {
                ended = true;
                requeued = fail_attempt(txn, &mut job, *kind, message.clone())?;
            }
        }
    }
    if let Some(mut c) = curves.take() {
        c.flush()?;
    }
    if ended {
        unindex_lease_of(txn, worker_id, job_id)?;
    }
    job.save(txn)?;
    let branches = if ended { settle(txn, &job)? } else { Vec::new() };
    Ok(Reported { stored, refused, why, job, requeued, branches })
}

/// Points of a job with step > `after_step`, at most `limit`; the second value is the step to
/// ask after when more follow.
pub fn curve<R: Reader>(
    r: &R,
    job_id: u64,
    after_step: u64,
    limit: usize,
) -> Result<(Vec<RecordedPoint>, Option<u64>)> {
    let mut out = Vec::new();
    let mut more = None;
    let Some(from) = after_step.checked_add(1) else { return Ok((out, more)) };
    curves::for_each(r, job_id, from, u64::MAX, |rec| {
        if out.len() == limit {
            more = out.last().map(|p: &RecordedPoint| p.point.step);
            return ControlFlow::Break(());
        }
        match decode_point(rec) {
            Ok(p) => out.push(p),
            Err(e) => tracing::error!(job = job_id, step = curves::step_of(rec), "a stored point does not read: {e}"),
        }
        ControlFlow::Continue(())
    })?;
    Ok((out, more))
}
