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

impl StopReason {
    /// Its name on the wire and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Steps => "steps",
            Self::Tokens => "tokens",
            Self::TargetLoss => "target_loss",
            Self::EarlyStopped => "early_stopped",
        }
    }

    /// The reason a name stands for; None for a name this build does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Steps, Self::Tokens, Self::TargetLoss, Self::EarlyStopped].into_iter().find(|r| r.name() == name)
    }
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
    /// Where the attempt's wall time went; sent once at its end (a fused run's phases are
    /// shared by its members).
    Profile(PhaseTimes),
}

/// Seconds an attempt spent in each phase. On the CPU every phase is exact; on CUDA the kernels
/// run asynchronously, so their time lands in `sync` (the one host wait per step), and a captured
/// step (CUDA graph) is all `replay`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// From the start of the run to its first step: dataset, model, resume.
    pub startup: f64,
    /// Drawing windows and building input tensors.
    pub data: f64,
    pub forward: f64,
    pub backward: f64,
    /// Gradient accumulation and the noise-scale norms.
    pub gns: f64,
    /// Clipping and AdamW.
    pub optimizer: f64,
    /// CUDA graph replays of whole steps.
    pub replay: f64,
    /// The per-step host wait for the loss and the norms.
    pub sync: f64,
    pub eval: f64,
    pub checkpoint: f64,
    /// Writing events.
    pub emit: f64,
    /// Steps this attempt ran, and whether they ran as a captured CUDA graph.
    pub steps: u64,
    pub captured: bool,
}

impl PhaseTimes {
    /// The phases and their seconds, in a fixed order.
    pub fn phases(&self) -> [(&'static str, f64); 11] {
        [
            ("startup", self.startup),
            ("data", self.data),
            ("forward", self.forward),
            ("backward", self.backward),
            ("gns", self.gns),
            ("optimizer", self.optimizer),
            ("replay", self.replay),
            ("sync", self.sync),
            ("eval", self.eval),
            ("checkpoint", self.checkpoint),
            ("emit", self.emit),
        ]
    }
}

impl Event {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"event":"failed","kind":"crashed","message":"encoding event: {e}","step":null}}"#)
        })
    }
}

/// One line of a fused run's stream: an event of member `member` (0-based, in the order the
/// configs were given). A single run's lines carry no member and read as member 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberEvent {
    #[serde(default)]
    pub member: usize,
    #[serde(flatten)]
    pub event: Event,
}

impl MemberEvent {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"member":{},"event":"failed","kind":"crashed","message":"encoding event: {e}","step":null}}"#,
                self.member
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lines_round_trip_and_plain_lines_read_as_member_zero() {
        let ev = Event::Preempted { step: 7 };
        let line = MemberEvent { member: 3, event: ev.clone() }.to_json_line();
        assert_eq!(line, r#"{"member":3,"event":"preempted","step":7}"#);
        let back: MemberEvent = serde_json::from_str(&line).expect("parses");
        assert_eq!((back.member, back.event), (3, ev.clone()));
        let plain: MemberEvent = serde_json::from_str(&ev.to_json_line()).expect("parses");
        assert_eq!((plain.member, plain.event), (0, ev));
        // Floats survive the flattened form bit for bit.
        let p = Event::Finished { step: 1, tokens: 2, reason: StopReason::Steps, val_loss: Some(0.1 + 0.2) };
        let back: MemberEvent =
            serde_json::from_str(&MemberEvent { member: 1, event: p.clone() }.to_json_line()).expect("parses");
        assert_eq!(back.event, p);
    }
}
