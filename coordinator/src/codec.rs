//! The store's encoding of a curve point (format 5): a version byte, then fixed little-endian
//! fields. It belongs to the store, not the wire, so the wire can change without a migration.
//!
//! Layout v1: `1u8`, attempt u32, step u64, tokens u64, then f64s flops, flops_exact,
//! train_loss, lr, grad_norm, gns_small_sq, gns_big_sq, tokens_per_s, then u64s b_small, b_big,
//! then two optional f64s (val_loss, b_simple), each a presence byte and 8 bytes.
use ladder_core::events::MetricPoint;
use ladder_core::status::RecordedPoint;

use crate::error::{CoordError, Result};

const V1: u8 = 1;
/// Encoded size of a point.
pub const POINT_BYTES: usize = 1 + 4 + 8 * 12 + 2 * 9;

/// Encodes a stored point.
pub fn encode_point(p: &RecordedPoint) -> Vec<u8> {
    let m = &p.point;
    let mut out = Vec::with_capacity(POINT_BYTES);
    out.push(V1);
    out.extend_from_slice(&p.attempt.to_le_bytes());
    for v in [m.step, m.tokens] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [m.flops, m.flops_exact, m.train_loss, m.lr, m.grad_norm, m.gns_small_sq, m.gns_big_sq, m.tokens_per_s] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [m.b_small, m.b_big] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [m.val_loss, m.b_simple] {
        out.push(u8::from(v.is_some()));
        out.extend_from_slice(&v.unwrap_or(0.0).to_le_bytes());
    }
    out
}

/// Reads fixed fields off the front of a byte slice.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) =
            self.0.split_at_checked(N).ok_or_else(|| CoordError::storage("a stored point is truncated"))?;
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    fn opt(&mut self) -> Result<Option<f64>> {
        let [present] = self.take::<1>()?;
        let v = self.f64()?;
        Ok((present == 1).then_some(v))
    }
}

/// Decodes a stored point.
pub fn decode_point(bytes: &[u8]) -> Result<RecordedPoint> {
    let mut c = Cursor(bytes);
    let [version] = c.take::<1>()?;
    if version != V1 {
        return Err(CoordError::storage(format!("a stored point has layout {version}; this build reads {V1}")));
    }
    let attempt = u32::from_le_bytes(c.take()?);
    let (step, tokens) = (c.u64()?, c.u64()?);
    let (flops, flops_exact, train_loss, lr) = (c.f64()?, c.f64()?, c.f64()?, c.f64()?);
    let (grad_norm, gns_small_sq, gns_big_sq, tokens_per_s) = (c.f64()?, c.f64()?, c.f64()?, c.f64()?);
    let (b_small, b_big) = (c.u64()?, c.u64()?);
    let (val_loss, b_simple) = (c.opt()?, c.opt()?);
    let point = MetricPoint {
        step,
        tokens,
        flops,
        flops_exact,
        train_loss,
        val_loss,
        lr,
        grad_norm,
        gns_small_sq,
        gns_big_sq,
        b_small,
        b_big,
        b_simple,
        tokens_per_s,
    };
    Ok(RecordedPoint { point, attempt })
}

/// The attempt that wrote a stored point, without decoding the rest (0 when unreadable).
pub fn attempt_of(bytes: &[u8]) -> u32 {
    match bytes {
        [V1, a, b, c, d, ..] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_bit_for_bit() {
        let p = RecordedPoint {
            point: MetricPoint {
                step: 7,
                tokens: 7 * 512,
                flops: 1.5e9,
                flops_exact: 1.7e9,
                train_loss: 0.1 + 0.2,
                val_loss: Some(2.25),
                lr: 3e-3,
                grad_norm: 0.75,
                gns_small_sq: 2.0,
                gns_big_sq: 1.0,
                b_small: 128,
                b_big: 512,
                b_simple: None,
                tokens_per_s: 1e4,
            },
            attempt: 3,
        };
        let bytes = encode_point(&p);
        assert_eq!(bytes.len(), POINT_BYTES);
        assert_eq!(decode_point(&bytes).expect("decodes"), p);
        assert_eq!(attempt_of(&bytes), 3);
        assert!(decode_point(&bytes[..20]).is_err());
        assert!(decode_point(&[9; POINT_BYTES]).is_err());
    }
}
