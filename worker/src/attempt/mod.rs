//! One attempt: of one job, or of several jobs of one shape fused into one batched model.
//!
//! - [`prepare`]: the dataset, each job's config written for the child, resume points;
//! - [`child`]: the `ladder-train` process, its control channel, and its events routed to each
//!   job's outbox;
//! - [`upload`]: a checkpoint staged, packed and uploaded once the curve before it is durable.
//!
//! A fenced job is dropped from the child (the last one kills it) and reports nothing more.
mod child;
mod prepare;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ladder_core::FailureKind;
use ladder_core::attempt::{Assignment, AttemptEvent};
use tokio_util::sync::CancellationToken;

use crate::cpu::CpuShare;
use crate::env::Env;
use crate::error::{Result, WorkerError};
use crate::report::{self, Outbox};

pub use prepare::cpu_demand;

/// How long a trainer may take to checkpoint after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(60);

/// One job of the attempt.
pub(crate) struct Member {
    a: Assignment,
    dir: PathBuf,
    outbox: Outbox,
    reporting: tokio::task::JoinHandle<()>,
    /// Cancelled when the coordinator fences this job's attempt (or the reporter finds it fenced).
    stop: CancellationToken,
    /// Its final event, once the trainer sent one.
    last: Option<AttemptEvent>,
    /// Fenced: dropped from the child, reports nothing more.
    dropped: bool,
    /// Branch-point checkpoints whose upload failed, still staged: (step, folder, why).
    pending: Vec<(u64, PathBuf, String)>,
}

fn failed(kind: FailureKind, message: String) -> AttemptEvent {
    AttemptEvent::Failed { kind, message, shared_device: false }
}

/// Runs the assignments (one, or several fused) to their end; a CPU attempt holds its `share` of
/// the cores. A job's `stop` (fencing) drops it from the child; `shutdown` sends the child
/// SIGTERM: it checkpoints, the checkpoints are uploaded, and the leases are released.
pub async fn run(
    env: Env,
    slot: String,
    assignments: Vec<(Assignment, CancellationToken)>,
    share: Option<(CpuShare, i32)>,
    shared_device: Option<Arc<AtomicBool>>,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut members = Vec::with_capacity(assignments.len());
    for (a, stop) in assignments {
        let dir = env.work_dir.join("attempts").join(format!("job-{}-a{}", a.job_id, a.attempt));
        std::fs::create_dir_all(&dir).map_err(|e| WorkerError::io(format!("creating {}", dir.display()), e))?;
        let ids = (env.worker_id.clone(), a.job_id, a.attempt);
        let spill = dir.join("events.spill");
        let (outbox, reporting) = report::start(env.rpc.clone(), ids, stop.clone(), env.stats.clone(), spill);
        members.push(Member { a, dir, outbox, reporting, stop, last: None, dropped: false, pending: Vec::new() });
    }
    env.stats.children.fetch_add(1, Ordering::Relaxed);
    let outcome = child::run_child(&env, &slot, &mut members, share, &shutdown).await;
    env.stats.children.fetch_sub(1, Ordering::Relaxed);
    if let Err(e) = outcome {
        tracing::error!(jobs = ?members.iter().map(|m| m.a.job_id).collect::<Vec<_>>(), "attempt could not run: {e}");
        let kind = if matches!(e, WorkerError::Domain(_)) { FailureKind::InvalidConfig } else { FailureKind::Crashed };
        for m in members.iter_mut().filter(|m| !m.dropped && m.last.is_none()) {
            m.last = Some(failed(kind, format!("worker {}: {e}", env.worker_id)));
        }
    }
    for m in members.iter_mut().filter(|m| !m.dropped && !m.pending.is_empty()) {
        if let Err(e) = upload::settle_pending(&env, m).await {
            tracing::error!(job = m.a.job_id, "storing its branch-point checkpoints: {e}");
        }
    }
    let shared = shared_device.is_some_and(|s| s.load(Ordering::SeqCst));
    for m in members {
        if let (false, Some(mut last)) = (m.dropped, m.last) {
            // Out of memory beside other jobs on its GPU: not this job's own failure.
            if let AttemptEvent::Failed { kind: FailureKind::OutOfMemory, shared_device, .. } = &mut last {
                *shared_device = shared;
            }
            m.outbox.send(last);
        }
        drop(m.outbox);
        let _ = m.reporting.await;
        let _ = std::fs::remove_dir_all(&m.dir);
    }
    Ok(())
}
