//! An attempt between the coordinator and a worker: the assignment a worker leases, and the
//! events it reports back for that attempt (every one named by job and attempt on the wire, so
//! that a stale attempt is fenced).
use serde::{Deserialize, Serialize};

use crate::events::{MetricPoint, StopReason};
use crate::job::JobConfig;
use crate::state::FailureKind;

/// A job leased to a worker as a new attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub job_id: u64,
    pub attempt: u32,
    /// The trainer config; `data.dir` and `checkpoint.dir` are the worker's to fill in.
    pub config: JobConfig,
    pub dataset_sha256: String,
    /// Newest complete checkpoint to resume from; 0 = start fresh.
    pub resume_step: u64,
    pub lease_ttl_ms: u64,
    /// The job's device memory by estimate, which the worker reserves while it runs.
    pub memory_bytes: u64,
    /// Every checkpoint step the coordinator holds, oldest first: where `resume_step` fails to
    /// load, the worker falls back to the next older one.
    pub checkpoint_steps: Vec<u64>,
    /// A branch with no checkpoint of its own starts from this checkpoint of its parent's.
    #[serde(default)]
    pub branch_from: Option<BranchSource>,
}

/// The parent checkpoint a branch starts from; the worker checks the bytes it fetched against
/// `sha256` before the trainer reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchSource {
    pub job_id: u64,
    pub step: u64,
    pub sha256: String,
}

/// What a worker reports of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AttemptEvent {
    /// The trainer started from this checkpoint step (0 = fresh): the attempt's points beyond it
    /// replace any an earlier attempt left there.
    Started {
        resumed_from_step: u64,
    },
    Point(MetricPoint),
    /// A line of the attempt's log: `source` is "trainer" (its stderr) or "worker".
    Log {
        source: String,
        text: String,
        at_ms: i64,
    },
    Finished {
        step: u64,
        reason: StopReason,
    },
    /// `shared_device`: the attempt ran beside others on its GPU, so an out-of-memory failure
    /// is not the job's own: it is retried alone, no restart charged.
    Failed {
        kind: FailureKind,
        message: String,
        #[serde(default)]
        shared_device: bool,
    },
    /// The worker gave the job back (it is shutting down) after checkpointing at `step`: requeued
    /// without a restart charged.
    Released {
        step: u64,
    },
}

impl AttemptEvent {
    /// Whether the attempt ends with this event.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Finished { .. } | Self::Failed { .. } | Self::Released { .. })
    }
}
