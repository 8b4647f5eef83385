//! Rotary position embedding (RoPE; Su et al. 2021), applied as GPT-NeoX and Llama apply it: each
//! head's query and key are rotated, in two halves, by the angle pos·θ_i with
//! θ_i = 10000^(−2i/d_head). It has no parameters, and a head can attend to a fixed offset (the
//! previous byte) from its first steps, where learned absolute positions must first be learned:
//! on bytes that kept small models on the bigram plateau for hundreds of steps.
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// The base of the angles, as in RoFormer and Llama.
pub const BASE: f64 = 10000.0;

/// cos and sin of every position's angles, `[t, d_head]` each (the halves repeated).
pub struct Rope {
    cos: Tensor,
    sin: Tensor,
    half: i64,
}

impl Rope {
    /// The tables for `t` positions of heads of width `d_head` (even; the shape checks it).
    pub fn new(t: i64, d_head: i64, device: Device) -> Result<Self> {
        let opts = (Kind::Float, device);
        let exponent = Tensor::f_arange_start_step(0, d_head, 2, opts)?.f_div_scalar(d_head as f64)?;
        let inv_freq = Tensor::f_pow_scalar(BASE, &exponent)?.f_reciprocal()?;
        let angles = Tensor::f_arange(t, opts)?.f_outer(&inv_freq)?;
        let angles = Tensor::f_cat(&[&angles, &angles], 1)?;
        Ok(Self { cos: angles.f_cos()?, sin: angles.f_sin()?, half: d_head / 2 })
    }

    /// `x [.., t, d_head]` rotated: x·cos + rotate_half(x)·sin, in x's dtype.
    pub fn rotate(&self, x: &Tensor) -> Result<Tensor> {
        let kind = x.kind();
        let (cos, sin) = (self.cos.f_to_kind(kind)?, self.sin.f_to_kind(kind)?);
        let x1 = x.f_narrow(-1, 0, self.half)?;
        let x2 = x.f_narrow(-1, self.half, self.half)?;
        let rotated = Tensor::f_cat(&[&x2.f_neg()?, &x1], -1)?;
        Ok(x.f_mul(&cos)?.f_add(&rotated.f_mul(&sin)?)?)
    }

    /// Splits `qkv [n, t, 3·d]` into heads `[n, h, t, d/h]`: q and k rotated together (one
    /// rotation over 2h heads, half the kernels of two), v as it is.
    pub fn heads(&self, qkv: &Tensor, h: i64) -> Result<(Tensor, Tensor, Tensor)> {
        let (n, t, d3) = qkv.size3()?;
        let d = d3 / 3;
        let qk = qkv.f_narrow(2, 0, 2 * d)?.f_view([n, t, 2 * h, d / h])?.f_transpose(1, 2)?;
        let qk = self.rotate(&qk)?;
        let v = qkv.f_narrow(2, 2 * d, d)?.f_view([n, t, h, d / h])?.f_transpose(1, 2)?;
        Ok((qk.f_narrow(1, 0, h)?, qk.f_narrow(1, h, h)?, v))
    }
}
