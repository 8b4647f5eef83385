//! The one job state machine and the one failure classification, shared by the trainer (which
//! exits with a failure's code), the worker (which reports it) and the coordinator (which retries).
use serde::{Deserialize, Serialize};

/// Where a job stands. `Queued → Running → Succeeded | Failed | Cancelled`; a lost or crashed
/// attempt goes back to `Queued` while restarts remain. A branch is `Pending` until its parent
/// has stored the checkpoint it forks from, then `Queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    #[serde(alias = "Queued")]
    Queued,
    #[serde(alias = "Running")]
    Running,
    #[serde(alias = "Succeeded")]
    Succeeded,
    #[serde(alias = "Failed")]
    Failed,
    #[serde(alias = "Cancelled")]
    Cancelled,
    Pending,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Pending => "pending",
        }
    }
}

/// Where a sweep stands: running until every job has ended (done), or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepState {
    #[serde(alias = "Running")]
    Running,
    #[serde(alias = "Done")]
    Done,
    #[serde(alias = "Cancelled")]
    Cancelled,
}

impl SweepState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Why an attempt failed. Only `Crashed` and `Lost` are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The loss became NaN or infinite.
    #[serde(alias = "Diverged")]
    Diverged,
    #[serde(alias = "OutOfMemory")]
    OutOfMemory,
    /// The config, dataset or checkpoint is unusable: retrying cannot help.
    #[serde(alias = "InvalidConfig")]
    InvalidConfig,
    /// The trainer or its worker failed in a way another attempt may not.
    #[serde(alias = "Crashed")]
    Crashed,
    /// The attempt's lease expired: its worker went silent.
    #[serde(alias = "Lost")]
    Lost,
    /// A branch whose parent failed, was cancelled, or ended before the step it forks from.
    Parent,
}

impl FailureKind {
    pub fn retriable(self) -> bool {
        matches!(self, Self::Crashed | Self::Lost)
    }

    /// The exit code `ladder-train` uses for this failure (a lost attempt has no process to exit).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Crashed | Self::Lost | Self::Parent => 1,
            Self::InvalidConfig => 2,
            Self::Diverged => 3,
            Self::OutOfMemory => 4,
        }
    }

    /// How a person reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Diverged => "diverged",
            Self::OutOfMemory => "out of memory",
            Self::InvalidConfig => "invalid config",
            Self::Crashed => "crashed",
            Self::Lost => "lost",
            Self::Parent => "its parent did not reach the branch point",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Diverged => "diverged",
            Self::OutOfMemory => "out_of_memory",
            Self::InvalidConfig => "invalid_config",
            Self::Crashed => "crashed",
            Self::Lost => "lost",
            Self::Parent => "parent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_still_read() {
        let s: JobState = serde_json::from_str("\"Running\"").expect("old spelling");
        assert_eq!(s, JobState::Running);
        let f: FailureKind = serde_json::from_str("\"OutOfMemory\"").expect("old spelling");
        assert_eq!(f, FailureKind::OutOfMemory);
        assert_eq!(serde_json::to_string(&FailureKind::OutOfMemory).expect("json"), "\"out_of_memory\"");
        assert!(FailureKind::Lost.retriable() && !FailureKind::Diverged.retriable());
    }
}
