//! AdamW with decoupled weight decay (PyTorch's update, step for step), the learning-rate
//! schedule, Kaplan's learning-rate rule, and global-norm gradient clipping.
use tch::Tensor;

use crate::error::Result;
use ladder_core::job::Schedule;

pub use ladder_core::job::kaplan_lr;

/// Learning rate for 0-based `step`: linear warmup, then cosine to peak·min_ratio or constant
/// (WSD schedules go through [`ladder_core::schedule::LrSchedule`] directly).
pub fn lr_at(step: u64, peak: f64, warmup: u64, total: u64, schedule: Schedule, min_ratio: f64) -> f64 {
    let s = ladder_core::schedule::LrSchedule {
        peak,
        warmup,
        total,
        schedule,
        min_ratio,
        decay_start: total,
        rewarmup: None,
        decay_shape: Default::default(),
    };
    s.at(step)
}

#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// AdamW over named parameters; state tensors are ours, so checkpoints capture them exactly.
/// On the CPU the update runs op by op (bit-identical to PyTorch's single-tensor AdamW); on CUDA,
/// after [`AdamW::use_fused`], as one fused kernel per weight-decay group that reads its step and
/// learning rate from device scalars, so it can be captured in a CUDA graph.
pub struct AdamW {
    pub cfg: AdamWConfig,
    params: Vec<Tensor>,
    decay: Vec<bool>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// Updates taken so far (for bias correction).
    pub step: u64,
    fused: Option<Fused>,
}

/// The device scalars of the fused update.
struct Fused {
    step: Tensor,
    lr: Tensor,
}

impl AdamW {
    pub fn new(params: Vec<Tensor>, decay: Vec<bool>, cfg: AdamWConfig) -> Result<Self> {
        let zeros = |ps: &[Tensor]| ps.iter().map(|p| p.f_zeros_like()).collect::<Result<Vec<_>, _>>();
        let exp_avg = zeros(&params)?;
        let exp_avg_sq = zeros(&params)?;
        Ok(Self { cfg, params, decay, exp_avg, exp_avg_sq, step: 0, fused: None })
    }

    /// Switches to the fused CUDA update (`_fused_adamw_`); its step scalar starts at `self.step`.
    pub fn use_fused(&mut self) -> Result<()> {
        let device = self.params.first().map_or(tch::Device::Cpu, Tensor::device);
        let opts = (tch::Kind::Float, device);
        let step = Tensor::f_full([], self.step as f64, opts)?;
        let lr = Tensor::f_zeros([], opts)?;
        self.fused = Some(Fused { step, lr });
        Ok(())
    }

    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// Sets the update count (a resumed checkpoint's), on the device too.
    pub fn set_step(&mut self, step: u64) -> Result<()> {
        self.step = step;
        if let Some(f) = &mut self.fused {
            let _guard = tch::no_grad_guard();
            let _ = f.step.f_fill_(step as f64)?;
        }
        Ok(())
    }

    /// Sets the learning rate the next fused update reads (outside a captured step).
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        if let Some(f) = &mut self.fused {
            let _guard = tch::no_grad_guard();
            let _ = f.lr.f_fill_(lr)?;
        }
        Ok(())
    }

    /// The device half of a fused update: bumps the device step and runs the kernels, touching no
    /// host state, so it may be captured once and replayed. Call [`AdamW::set_lr`] before and
    /// count the step on the host after ([`AdamW::step`] += 1).
    pub fn update_device(&mut self, grads: &[Tensor]) -> Result<()> {
        let Some(f) = &mut self.fused else {
            return Err(crate::error::TrainerError::invalid("optimizer", "update_device needs use_fused first"));
        };
        let _guard = tch::no_grad_guard();
        let _ = f.step.f_add_scalar_(1.0)?;
        let c = self.cfg;
        for decayed in [true, false] {
            let idx: Vec<usize> = (0..self.params.len()).filter(|&i| self.decay[i] == decayed).collect();
            let pick = |v: &[Tensor]| idx.iter().map(|&i| v[i].shallow_clone()).collect::<Vec<_>>();
            let wd = if decayed { c.weight_decay } else { 0.0 };
            let args = crate::cuda::AdamWArgs { beta1: c.beta1, beta2: c.beta2, weight_decay: wd, eps: c.eps };
            crate::cuda::fused_adamw(
                &pick(&self.params),
                &pick(grads),
                &pick(&self.exp_avg),
                &pick(&self.exp_avg_sq),
                &f.step,
                &f.lr,
                args,
            )?;
        }
        Ok(())
    }

    /// Points the optimizer at other tensors holding the same parameters (a fused stack that
    /// was rebuilt without a member); the state stays.
    pub fn set_params(&mut self, params: Vec<Tensor>) {
        self.params = params;
    }

    /// One update with gradients `grads` (same order as the parameters).
    pub fn update(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        if self.fused.is_some() {
            self.set_lr(lr)?;
            self.update_device(grads)?;
            self.step += 1;
            return Ok(());
        }
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let c = self.cfg;
        let bias1 = 1.0 - c.beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - c.beta2.powi(self.step as i32)).sqrt();
        let step_size = lr / bias1;
        let state =
            self.params.iter_mut().zip(&self.decay).zip(self.exp_avg.iter_mut().zip(self.exp_avg_sq.iter_mut()));
        for (g, ((p, &decay), (m, v))) in grads.iter().zip(state) {
            if decay && c.weight_decay > 0.0 {
                let _ = p.f_mul_scalar_(1.0 - lr * c.weight_decay)?;
            }
            let _ = m.f_lerp_(g, 1.0 - c.beta1)?;
            let _ = v.f_mul_scalar_(c.beta2)?;
            let _ = v.f_addcmul_(g, &g.f_mul_scalar(1.0 - c.beta2)?)?;
            let denom = v.f_sqrt()?.f_div_scalar_(bias2_sqrt)?.f_add_scalar_(c.eps)?;
            let _ = p.f_addcdiv_(&m.f_mul_scalar(-step_size)?, &denom)?;
        }
        Ok(())
    }

    /// State tensors with stable names, for checkpoints.
    pub fn state(&self, names: &[String]) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * names.len());
        for (i, n) in names.iter().enumerate() {
            out.push((format!("exp_avg.{n}"), self.exp_avg[i].shallow_clone()));
            out.push((format!("exp_avg_sq.{n}"), self.exp_avg_sq[i].shallow_clone()));
        }
        out
    }

    /// Mutable views of the state, for loading a checkpoint in place.
    pub fn state_mut(&mut self) -> impl Iterator<Item = (usize, &mut Tensor, &mut Tensor)> {
        self.exp_avg.iter_mut().zip(self.exp_avg_sq.iter_mut()).enumerate().map(|(i, (m, v))| (i, m, v))
    }
}

/// Scales `grads` in place so their global norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: coefficient max_norm/(norm+1e-6), capped at 1). No host sync.
pub fn clip_grad_norm(grads: &mut [Tensor], norm_sq: &Tensor, max_norm: f64) -> Result<()> {
    if max_norm <= 0.0 {
        return Ok(());
    }
    let _guard = tch::no_grad_guard();
    let norm = norm_sq.f_sqrt()?;
    let coef = norm.f_add_scalar(1e-6)?.f_reciprocal()?.f_mul_scalar(max_norm)?.f_clamp_max(1.0)?;
    for g in grads {
        let coef = coef.f_to_kind(g.kind())?;
        let _ = g.f_mul_(&coef)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_floor() {
        let lr = |s| lr_at(s, 1e-3, 10, 110, Schedule::Cosine, 0.1);
        assert!((lr(0) - 1e-4).abs() < 1e-15);
        assert!((lr(9) - 1e-3).abs() < 1e-15);
        assert!((lr(10) - 1e-3).abs() < 1e-15);
        assert!((lr(60) - 0.55e-3).abs() < 1e-12); // halfway: mean of peak and floor
        assert!((lr(110) - 1e-4).abs() < 1e-15);
        assert_eq!(lr_at(50, 1e-3, 10, 110, Schedule::Constant, 0.1), 1e-3);
    }
}
