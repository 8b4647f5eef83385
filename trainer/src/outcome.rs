//! How an attempt (or one member of a fused run) ended without an error, and the final event
//! that says so.
use crate::events::{Event, StopReason};

/// How an attempt ended without an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Finished {
        step: u64,
        reason: StopReason,
        val_loss: Option<f64>,
    },
    /// The loss became NaN or infinite at this step.
    Diverged {
        step: u64,
        train_loss: f64,
    },
    /// `stop` was raised (SIGTERM): checkpointed at `step` and returned early.
    Preempted {
        step: u64,
    },
}

/// The final event of a member that ended with `o`.
pub fn outcome_event(o: &Outcome, batch_tokens: u64) -> Event {
    match *o {
        Outcome::Finished { step, reason, val_loss } => {
            Event::Finished { step, tokens: step.saturating_mul(batch_tokens), reason, val_loss }
        }
        Outcome::Diverged { step, train_loss } => Event::Failed {
            kind: crate::events::FailureKind::Diverged,
            message: format!("diverged: loss {train_loss} at step {step}"),
            step: Some(step),
        },
        Outcome::Preempted { step } => Event::Preempted { step },
    }
}
