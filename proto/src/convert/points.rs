//! Metric points: a trainer's point as a worker reports it, and a stored point (with the attempt
//! that wrote it) as a curve returns it. Every float is checked: one NaN stored would make a
//! record unreadable.
use ladder_core::events::MetricPoint;
use ladder_core::status::RecordedPoint;
use ladder_core::{DomainError, Result};

use crate::pb;

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

impl From<&RecordedPoint> for pb::MetricPoint {
    fn from(p: &RecordedPoint) -> Self {
        Self { attempt: p.attempt, ..Self::from(&p.point) }
    }
}

impl TryFrom<&pb::MetricPoint> for MetricPoint {
    type Error = DomainError;

    fn try_from(p: &pb::MetricPoint) -> Result<Self> {
        let bad = |field: &str, why: String| DomainError::message(format!("metric_point.{field}"), why);
        if p.step == 0 {
            return Err(bad("step", "steps count from 1".into()));
        }
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

impl TryFrom<&pb::MetricPoint> for RecordedPoint {
    type Error = DomainError;

    fn try_from(p: &pb::MetricPoint) -> Result<Self> {
        Ok(Self { point: MetricPoint::try_from(p)?, attempt: p.attempt })
    }
}

/// A point as coordinators of store format 4 and older kept it: a protobuf `MetricPoint`, its
/// attempt included. Only the store's migration reads these.
pub fn decode_legacy_point(bytes: &[u8]) -> Result<RecordedPoint> {
    use prost::Message;
    let p = pb::MetricPoint::decode(bytes).map_err(|e| DomainError::message("stored point", e.to_string()))?;
    RecordedPoint::try_from(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> MetricPoint {
        MetricPoint {
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
        }
    }

    #[test]
    fn round_trips_and_refuses_impossible_points() {
        let m = point();
        let p = pb::MetricPoint::from(&m);
        assert_eq!(MetricPoint::try_from(&p).expect("valid"), m);
        let e = MetricPoint::try_from(&pb::MetricPoint { train_loss: f64::NAN, ..p }).expect_err("NaN");
        assert_eq!(e.to_string(), "invalid message: metric_point.train_loss: NaN at step 3 is not finite");
        assert!(MetricPoint::try_from(&pb::MetricPoint { step: 0, ..p }).is_err());
        assert!(MetricPoint::try_from(&pb::MetricPoint { b_small: 512, ..p }).is_err());
    }

    #[test]
    fn legacy_points_decode_with_their_attempt() {
        use prost::Message;
        let r = RecordedPoint { point: point(), attempt: 4 };
        let bytes = pb::MetricPoint::from(&r).encode_to_vec();
        assert_eq!(decode_legacy_point(&bytes).expect("decodes"), r);
        assert!(decode_legacy_point(b"\xff\xff").is_err());
    }
}
