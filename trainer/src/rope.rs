//! Rotary position embedding (RoPE; Su et al. 2021), applied as GPT-NeoX and Llama apply it: each
//! head's query and key are rotated, in two halves, by the angle pos·θ_i with
//! θ_i = 10000^(−2i/d_head). It has no parameters, and a head can attend to a fixed offset (the
//! previous byte) from its first steps, where learned absolute positions must first be learned:
//! on bytes that kept small models on the bigram plateau for hundreds of steps.
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// The base of the angles, as in RoFormer and Llama.
pub const BASE: f64 = 10000.0;

/// cos and signed sin of every position below n_ctx, `[n_ctx, d_head]` each, built once per
/// model. Invariant: `sin_signed = [−sin, sin]` on the two halves, so that
/// `rotate_half(x)·sin = swap_halves(x)·sin_signed` element for element (IEEE negation is exact).
pub struct Rope {
    cos: Tensor,
    sin_signed: Tensor,
    half: i64,
}

impl Rope {
    /// The tables for `n_ctx` positions of heads of width `d_head` (even; the shape checks it).
    pub fn new(n_ctx: i64, d_head: i64, device: Device) -> Result<Self> {
        let opts = (Kind::Float, device);
        let half = d_head / 2;
        let exponent = Tensor::f_arange_start_step(0, d_head, 2, opts)?.f_div_scalar(d_head as f64)?;
        let inv_freq = Tensor::f_pow_scalar(BASE, &exponent)?.f_reciprocal()?;
        let angles = Tensor::f_arange(n_ctx, opts)?.f_outer(&inv_freq)?;
        let cos = angles.f_cos()?;
        let sin = angles.f_sin()?;
        Ok(Self { cos: Tensor::f_cat(&[&cos, &cos], 1)?, sin_signed: Tensor::f_cat(&[&sin.f_neg()?, &sin], 1)?, half })
    }

    /// `x [.., t, d_head]` (t ≤ n_ctx) rotated: x·cos + rotate_half(x)·sin, in x's dtype.
    fn rotate(&self, x: &Tensor, t: i64) -> Result<Tensor> {
        let kind = x.kind();
        let cos = self.cos.f_narrow(0, 0, t)?.f_to_kind(kind)?;
        let sin = self.sin_signed.f_narrow(0, 0, t)?.f_to_kind(kind)?;
        let x1 = x.f_narrow(-1, 0, self.half)?;
        let x2 = x.f_narrow(-1, self.half, self.half)?;
        let swapped = Tensor::f_cat(&[&x2, &x1], -1)?;
        Ok(x.f_mul(&cos)?.f_add(&swapped.f_mul(&sin)?)?)
    }

    /// Splits `qkv [n, t, 3·d]` into heads `[n, h, t, d/h]`: q and k rotated together (one
    /// rotation over 2h heads, half the kernels of two), v as it is.
    pub fn heads(&self, qkv: &Tensor, h: i64) -> Result<(Tensor, Tensor, Tensor)> {
        let (n, t, d3) = qkv.size3()?;
        let d = d3 / 3;
        let qk = qkv.f_narrow(2, 0, 2 * d)?.f_view([n, t, 2 * h, d / h])?.f_transpose(1, 2)?;
        let qk = self.rotate(&qk, t)?;
        let v = qkv.f_narrow(2, 2 * d, d)?.f_view([n, t, h, d / h])?.f_transpose(1, 2)?;
        Ok((qk.f_narrow(1, 0, h)?, qk.f_narrow(1, h, h)?, v))
    }
}
