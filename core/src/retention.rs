//! Which checkpoints a job keeps: a sweep spec's `[retention]` policy, after Determined's
//! checkpoint GC (`save_trial_latest`, `save_trial_best`). Per job the coordinator keeps the
//! newest `keep_latest`, the `keep_best` with the lowest validation loss, the last of a job that
//! succeeded (`keep_final`), every checkpoint a branch forks from until its branches have ended,
//! and the one a running attempt resumed from; it deletes the rest once a newer one is durable.
use serde::{Deserialize, Serialize};

/// A sweep's checkpoint retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// The newest this many checkpoints of each job (at least 1: a resume needs one).
    #[serde(default = "default_latest")]
    pub keep_latest: u32,
    /// The this many checkpoints of each job with the lowest validation loss at their step.
    #[serde(default)]
    pub keep_best: u32,
    /// A succeeded job's last checkpoint, the trained model.
    #[serde(default = "yes")]
    pub keep_final: bool,
}

fn default_latest() -> u32 {
    2
}

fn yes() -> bool {
    true
}

impl Default for Retention {
    fn default() -> Self {
        Self { keep_latest: default_latest(), keep_best: 0, keep_final: true }
    }
}

impl Retention {
    /// Most checkpoints of one job the policy lets a spec keep by `keep_latest` or `keep_best`.
    pub const MAX_KEPT: u32 = 1000;
}
