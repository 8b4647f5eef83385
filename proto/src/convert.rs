//! Proto ↔ domain conversions. Wire input is checked here, once: whatever fails becomes a
//! [`DomainError`], which the coordinator answers with `invalid_argument`.
use ladder_core::events::MetricPoint;
use ladder_core::{DomainError, FailureKind, JobState, Result};

use crate::pb;

impl From<FailureKind> for pb::FailureKind {
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::Diverged => Self::Diverged,
            FailureKind::OutOfMemory => Self::OutOfMemory,
            FailureKind::InvalidConfig => Self::InvalidConfig,
            FailureKind::Crashed => Self::Crashed,
            FailureKind::Lost => Self::Lost,
        }
    }
}

/// A worker's failure report. An unknown or unset kind counts as a crash: retried, never lost.
impl From<pb::FailureKind> for FailureKind {
    fn from(k: pb::FailureKind) -> Self {
        match k {
            pb::FailureKind::Diverged => Self::Diverged,
            pb::FailureKind::OutOfMemory => Self::OutOfMemory,
            pb::FailureKind::InvalidConfig => Self::InvalidConfig,
            pb::FailureKind::Lost => Self::Lost,
            pb::FailureKind::Crashed | pb::FailureKind::Unspecified => Self::Crashed,
        }
    }
}

/// A failure kind from the wire's `i32`; values this build does not know count as a crash.
pub fn failure_kind(v: i32) -> FailureKind {
    pb::FailureKind::try_from(v).unwrap_or(pb::FailureKind::Crashed).into()
}

impl From<JobState> for pb::JobState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Succeeded => Self::Succeeded,
            JobState::Failed => Self::Failed,
            JobState::Cancelled => Self::Cancelled,
        }
    }
}

impl TryFrom<pb::JobState> for JobState {
    type Error = DomainError;

    fn try_from(s: pb::JobState) -> Result<Self> {
        match s {
            pb::JobState::Queued => Ok(Self::Queued),
            pb::JobState::Running => Ok(Self::Running),
            pb::JobState::Succeeded => Ok(Self::Succeeded),
            pb::JobState::Failed => Ok(Self::Failed),
            pb::JobState::Cancelled => Ok(Self::Cancelled),
            pb::JobState::Unspecified => Err(DomainError::message("job.state", "unspecified")),
        }
    }
}

impl From<&MetricPoint> for pb::MetricPoint {
    fn from(m: &MetricPoint) -> Self {
        Self {
            step: m.step,
            tokens: m.tokens,
            flops: m.flops,
            flops_exact: m.flops_exact,
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            lr: m.lr,
            grad_norm: m.grad_norm,
            gns_small_sq: m.gns_small_sq,
            gns_big_sq: m.gns_big_sq,
            b_small: m.b_small,
            b_big: m.b_big,
            b_simple: m.b_simple,
            tokens_per_s: m.tokens_per_s,
            attempt: 0,
        }
    }
}

impl TryFrom<&pb::MetricPoint> for MetricPoint {
    type Error = DomainError;

    fn try_from(p: &pb::MetricPoint) -> Result<Self> {
        let bad = |field: &str, why: String| DomainError::message(format!("metric_point.{field}"), why);
        if p.step == 0 {
            return Err(bad("step", "steps count from 1".into()));
        }
        // Every float is checked: one NaN stored would make the record unreadable (JSON null).
        let floats = [
            ("train_loss", p.train_loss),
            ("lr", p.lr),
            ("grad_norm", p.grad_norm),
            ("flops", p.flops),
            ("flops_exact", p.flops_exact),
            ("gns_small_sq", p.gns_small_sq),
            ("gns_big_sq", p.gns_big_sq),
            ("tokens_per_s", p.tokens_per_s),
        ];
        for (field, v) in
            floats.into_iter().chain(p.val_loss.map(|v| ("val_loss", v))).chain(p.b_simple.map(|v| ("b_simple", v)))
        {
            if !v.is_finite() {
                return Err(bad(field, format!("{v} at step {} is not finite", p.step)));
            }
        }
        if p.b_small > p.b_big {
            return Err(bad("b_small", format!("B_small {} exceeds B_big {}", p.b_small, p.b_big)));
        }
        Ok(MetricPoint {
            step: p.step,
            tokens: p.tokens,
            flops: p.flops,
            flops_exact: p.flops_exact,
            train_loss: p.train_loss,
            val_loss: p.val_loss,
            lr: p.lr,
            grad_norm: p.grad_norm,
            gns_small_sq: p.gns_small_sq,
            gns_big_sq: p.gns_big_sq,
            b_small: p.b_small,
            b_big: p.b_big,
            b_simple: p.b_simple,
            tokens_per_s: p.tokens_per_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_impossible_points() {
        let m = MetricPoint {
            step: 3,
            tokens: 300,
            flops: 1e9,
            flops_exact: 1.1e9,
            train_loss: 2.5,
            val_loss: Some(2.6),
            lr: 1e-3,
            grad_norm: 0.7,
            gns_small_sq: 2.0,
            gns_big_sq: 1.0,
            b_small: 64,
            b_big: 256,
            b_simple: Some(42.0),
            tokens_per_s: 1e4,
        };
        let p = pb::MetricPoint::from(&m);
        assert_eq!(MetricPoint::try_from(&p).expect("valid"), m);
        let e = MetricPoint::try_from(&pb::MetricPoint { train_loss: f64::NAN, ..p }).expect_err("NaN");
        assert_eq!(e.to_string(), "invalid message: metric_point.train_loss: NaN at step 3 is not finite");
        assert!(MetricPoint::try_from(&pb::MetricPoint { step: 0, ..p }).is_err());
        assert!(MetricPoint::try_from(&pb::MetricPoint { b_small: 512, ..p }).is_err());
    }
}
