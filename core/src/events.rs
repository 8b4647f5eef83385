//! The event stream: one JSON object per line on stdout, read by the worker.
use serde::{Deserialize, Serialize};

use crate::accounting::Accounting;
use crate::shape::Shape;

/// One point of a loss curve (a completed optimizer step). Flops and tokens are cumulative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub step: u64,
    pub tokens: u64,
    /// Kaplan's C = 6·N·tokens.
    pub flops: f64,
    /// The training FLOPs this model actually ran (3 × exact forward).
    pub flops_exact: f64,
    pub train_loss: f64,
    /// Present on evaluation steps.
    pub val_loss: Option<f64>,
    pub lr: f64,
    /// Global gradient norm before clipping: |G_big|.
    pub grad_norm: f64,
    /// Mean over micro-batches of |G_small|².
    pub gns_small_sq: f64,
    /// |G_big|².
    pub gns_big_sq: f64,
    /// Micro-batch and batch sizes, in tokens.
    pub b_small: u64,
    pub b_big: u64,
    /// EMA estimate of B_simple = tr(Σ)/|G|² in tokens; absent while undefined (B_small = B_big).
    pub b_simple: Option<f64>,
    pub tokens_per_s: f64,
}

/// What the attempt is, sent once at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub shape: Shape,
    pub accounting: Accounting,
    pub batch_tokens: u64,
    pub micro_batch_seqs: u64,
    pub accumulation: u64,
    pub total_steps: u64,
    pub peak_lr: f64,
    pub device: String,
    /// D: training tokens used (after the limit) and available in the file.
    pub dataset_tokens: u64,
    pub dataset_tokens_available: u64,
    pub resumed_from_step: Option<u64>,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Steps,
    Tokens,
    TargetLoss,
    /// `stop.patience` evaluations without a new best validation loss.
    EarlyStopped,
}

pub use crate::state::FailureKind;

/// The exit code of an attempt that was preempted after checkpointing.
pub const PREEMPTED_EXIT_CODE: u8 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started(RunInfo),
    Metrics(MetricPoint),
    Checkpoint {
        step: u64,
        path: String,
        bytes: u64,
    },
    Finished {
        step: u64,
        tokens: u64,
        reason: StopReason,
        val_loss: Option<f64>,
    },
    Failed {
        kind: FailureKind,
        message: String,
        step: Option<u64>,
    },
    /// Asked to stop (SIGTERM): checkpointed at `step` and exited without finishing.
    Preempted {
        step: u64,
    },
}

impl Event {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"event":"failed","kind":"crashed","message":"encoding event: {e}","step":null}}"#)
        })
    }
}
