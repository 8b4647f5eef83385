//! Gradient accumulation that also measures the gradient noise scale at no extra pass
//! (McCandlish et al. 2018, App. A.1): each micro-batch's gradient norm is taken before
//! it is folded into the accumulator, the full batch's norm after.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::Result;

/// Accumulates micro-batch gradients into buffers of its own, one per parameter.
pub struct GradAccumulator {
    acc: Vec<Tensor>,
    micro_sq: Vec<Tensor>,
    /// Whether micro-batch norms are measured (the noise scale); without, |G_small|² reads as |G_big|².
    measure: bool,
}

impl GradAccumulator {
    /// Buffers shaped like `params` (or like one member's views of a fused stack).
    pub fn new(params: &[Tensor]) -> Result<Self> {
        let acc = params.iter().map(|p| p.f_zeros_like()).collect::<Result<_, _>>()?;
        Ok(Self { acc, micro_sq: Vec::new(), measure: true })
    }

    /// Stops measuring micro-batch norms (the noise scale's cost, for benchmarks).
    pub fn without_noise_scale(mut self) -> Self {
        self.measure = false;
        self
    }

    pub fn measures(&self) -> bool {
        self.measure
    }

    /// Folds one micro-batch's gradients (in parameter order; an undefined one is skipped) into
    /// the accumulator and records their squared norm. The caller zeroes the `.grad`s afterwards.
    pub fn absorb(&mut self, grads: &[Tensor]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let first = self.micro_sq.is_empty();
        let mut sq = Vec::with_capacity(grads.len());
        for (g, a) in grads.iter().zip(self.acc.iter_mut()) {
            if !g.defined() {
                continue;
            }
            if self.measure {
                let flat = g.f_reshape([-1])?;
                sq.push(flat.f_dot(&flat)?.f_to_kind(Kind::Double)?);
            }
            if first {
                a.f_copy_(g)?;
            } else {
                let _ = a.f_add_(g)?;
            }
        }
        let total = if self.measure {
            Tensor::f_stack(&sq, 0)?.f_sum(Kind::Double)?
        } else {
            Tensor::f_zeros([], (Kind::Double, self.device()))?
        };
        self.micro_sq.push(total);
        Ok(())
    }

    fn device(&self) -> tch::Device {
        self.acc.first().map_or(tch::Device::Cpu, Tensor::device)
    }

    /// [`absorb`](Self::absorb) from the `.grad` of each of `params`, then zeroes them.
    pub fn absorb_params(&mut self, params: &[Tensor]) -> Result<()> {
        let grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
        self.absorb(&grads)?;
        let _guard = tch::no_grad_guard();
        for mut g in grads.into_iter().filter(Tensor::defined) {
            let _ = g.f_zero_()?;
        }
        Ok(())
    }

    /// Ends the step: the accumulator becomes the mean gradient G_big.
    /// Returns (mean over micro-batches of |G_small|², |G_big|²) as scalar tensors.
    pub fn finish(&mut self) -> Result<(Tensor, Tensor)> {
        let _guard = tch::no_grad_guard();
        let k = self.micro_sq.len().max(1) as f64;
        let small = Tensor::f_stack(&self.micro_sq, 0)?.f_mean(Kind::Double)?;
        self.micro_sq.clear();
        let mut sq = Vec::with_capacity(self.acc.len());
        for a in &mut self.acc {
            let _ = a.f_mul_scalar_(1.0 / k)?;
            let flat = a.f_reshape([-1])?;
            sq.push(flat.f_dot(&flat)?.f_to_kind(Kind::Double)?);
        }
        let big = Tensor::f_stack(&sq, 0)?.f_sum(Kind::Double)?;
        if !self.measure {
            return Ok((big.shallow_clone(), big));
        }
        Ok((small, big))
    }

    /// The mean gradient after [`finish`](Self::finish), in parameter order.
    pub fn grads(&mut self) -> &mut [Tensor] {
        &mut self.acc
    }
}

/// One step's measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GnsSample {
    /// Mean over micro-batches of |G_small|².
    pub small_sq: f64,
    /// |G_big|².
    pub big_sq: f64,
    /// Micro-batch and full-batch sizes (tokens).
    pub b_small: f64,
    pub b_big: f64,
}

impl GnsSample {
    /// Unbiased |G|² = (B_big|G_big|² − B_small|G_small|²)/(B_big − B_small).
    pub fn g_sq(&self) -> Option<f64> {
        (self.b_big > self.b_small)
            .then(|| (self.b_big * self.big_sq - self.b_small * self.small_sq) / (self.b_big - self.b_small))
    }

    /// Unbiased tr(Σ) = (|G_small|² − |G_big|²)/(1/B_small − 1/B_big).
    pub fn tr_sigma(&self) -> Option<f64> {
        (self.b_big > self.b_small).then(|| (self.small_sq - self.big_sq) / (1.0 / self.b_small - 1.0 / self.b_big))
    }
}

/// Separate EMAs of |G|² and tr(Σ); B_simple is their ratio.
///
/// The window grows with the step: the decay at step t is min(`decay`, 1 − [`WINDOW_FRACTION`]/t),
/// so the average spans about the last t/8 steps, up to (1 + decay)/(1 − decay). A fixed
/// per-step decay let the first steps, whose |G|² is 10–100× larger, hold the ratio flat for a
/// hundred steps; a window proportional to t forgets that transient at the same rate in log-steps.
///
/// Variance: with k micro-batches of b tokens (B_big = k·b) and Gaussian gradient noise,
/// one step's estimate of |G|² has Var = 4·GᵀΣG/B_big + 2k·tr(Σ²)/((k−1)·B_big²), so its relative
/// standard deviation is about √(2k/(k−1)/p)·B_simple/B_big once B_big ≪ B_simple, where
/// p = tr(Σ)²/tr(Σ²) is the effective dimension of the noise; tr(Σ)'s is √(2/((k−1)p)). The |G|²
/// term dominates late in training: a window of w steps divides its variance by about w, and
/// `b_simple` stays None while the averaged |G|² is not positive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GnsEma {
    pub decay: f64,
    pub g_sq: f64,
    pub tr_sigma: f64,
    pub updates: u64,
}

/// The averaging window is about this fraction of the steps so far.
pub const WINDOW_FRACTION: f64 = 0.125;

impl GnsEma {
    pub fn new(decay: f64) -> Self {
        Self { decay, g_sq: 0.0, tr_sigma: 0.0, updates: 0 }
    }

    /// The decay applied at the next update: 0 for the first (the EMA starts at that sample).
    fn current_decay(&self) -> f64 {
        let t = (self.updates + 1) as f64;
        self.decay.min(1.0 - 1.0 / (WINDOW_FRACTION * t).max(1.0))
    }

    /// Folds in one step; returns the current B_simple (None until defined and positive).
    pub fn update(&mut self, s: &GnsSample) -> Option<f64> {
        if let (Some(g), Some(t)) = (s.g_sq(), s.tr_sigma())
            && g.is_finite()
            && t.is_finite()
        {
            let d = self.current_decay();
            self.g_sq = d * self.g_sq + (1.0 - d) * g;
            self.tr_sigma = d * self.tr_sigma + (1.0 - d) * t;
            self.updates += 1;
        }
        self.b_simple()
    }

    /// tr(Σ)/|G|² from the averages (None until |G|² is positive).
    pub fn b_simple(&self) -> Option<f64> {
        (self.updates > 0 && self.g_sq > 0.0).then(|| self.tr_sigma / self.g_sq)
    }
}
