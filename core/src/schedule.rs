//! The learning-rate schedule of a job: linear warmup, then cosine, constant, or
//! warmup–stable–decay (WSD: constant until `decay_start`, then a cooldown to lr·min_lr_ratio,
//! linear or 1-sqrt, Hägele et al. 2024). A cooldown branch of a constant-LR trunk is a WSD run
//! whose decay starts at the branch point.

pub use crate::job::DecayShape;
use crate::job::{Job, Schedule};

/// Everything the schedule of one job depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup: u64,
    pub total: u64,
    pub schedule: Schedule,
    pub min_ratio: f64,
    /// WSD: the 0-based step whose update is the first of the cooldown.
    pub decay_start: u64,
    pub decay_shape: DecayShape,
    /// A branch's re-warmup: (first step, steps, starting rate).
    pub rewarmup: Option<(u64, u64, f64)>,
}

impl LrSchedule {
    /// The schedule of a validated job. WSD without a `decay_start` cools down over the last
    /// fifth of its steps.
    pub fn of(job: &Job) -> Self {
        let t = &job.config.train;
        let total = job.total_steps;
        Self {
            peak: job.peak_lr,
            warmup: t.warmup_steps,
            total,
            schedule: t.schedule,
            min_ratio: t.min_lr_ratio,
            decay_start: t.decay_start.unwrap_or(total - total / 5),
            decay_shape: t.decay_shape.unwrap_or_default(),
            rewarmup: match (t.rewarmup_steps, t.rewarmup_from_lr, &job.config.branch) {
                (Some(n), Some(from), Some(b)) => Some((b.step, n, from)),
                _ => None,
            },
        }
    }

    /// The learning rate of 0-based `step`.
    pub fn at(&self, step: u64) -> f64 {
        let peak = self.peak;
        if step < self.warmup {
            return peak * (step + 1) as f64 / self.warmup as f64;
        }
        // A batch window's steps after its branch point ramp from the trunk's rate to its own.
        if let Some((first, steps, from)) = self.rewarmup
            && step >= first
            && step - first < steps
        {
            return from + (peak - from) * (step - first + 1) as f64 / steps as f64;
        }
        let min = peak * self.min_ratio;
        match self.schedule {
            Schedule::Constant => peak,
            Schedule::Cosine => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                let progress = ((step - self.warmup) as f64 / span).min(1.0);
                min + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (peak - min)
            }
            Schedule::Wsd if step < self.decay_start => peak,
            Schedule::Wsd => {
                // The last step of the run ends the cooldown at exactly the floor.
                let span = self.total.saturating_sub(self.decay_start).max(1) as f64;
                let progress = ((step - self.decay_start + 1) as f64 / span).min(1.0);
                let left = match self.decay_shape {
                    DecayShape::Linear => 1.0 - progress,
                    DecayShape::OneMinusSqrt => 1.0 - progress.sqrt(),
                };
                min + left * (peak - min)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wsd(shape: DecayShape) -> LrSchedule {
        LrSchedule {
            peak: 1e-3,
            warmup: 10,
            total: 110,
            schedule: Schedule::Wsd,
            min_ratio: 0.0,
            decay_start: 90,
            decay_shape: shape,
            rewarmup: None,
        }
    }

    #[test]
    fn a_rewarmup_ramps_from_the_trunks_rate_to_the_windows_then_holds() {
        // A √4-scaled window branched at step 50 from a trunk at 1e-3, re-warmed over 10 steps.
        let s = LrSchedule {
            peak: 2e-3,
            schedule: Schedule::Constant,
            rewarmup: Some((50, 10, 1e-3)),
            ..wsd(DecayShape::Linear)
        };
        assert!((s.at(50) - 1.1e-3).abs() < 1e-15, "the first step moves a tenth of the way: {}", s.at(50));
        assert!((s.at(54) - 1.5e-3).abs() < 1e-15, "{}", s.at(54));
        assert_eq!(s.at(59), 2e-3, "the last ramp step reaches the window's rate");
        assert_eq!(s.at(80), 2e-3);
        assert_eq!(LrSchedule { rewarmup: None, ..s }.at(50), 2e-3, "without one the window starts at its rate");
    }

    #[test]
    fn wsd_is_flat_then_cools_down_to_the_floor() {
        let s = wsd(DecayShape::Linear);
        assert_eq!(s.at(0), 1e-4, "warmup");
        assert_eq!(s.at(50), 1e-3);
        assert_eq!(s.at(89), 1e-3, "the last step before the cooldown is at the peak");
        assert!((s.at(99) - 0.5e-3).abs() < 1e-12, "half way down: {}", s.at(99));
        assert_eq!(s.at(109), 0.0, "the last step reaches the floor");
        let q = wsd(DecayShape::OneMinusSqrt);
        assert!((q.at(99) - 1e-3 * (1.0 - 0.5f64.sqrt())).abs() < 1e-12);
        assert!(q.at(95) < s.at(95), "1-sqrt falls faster at first");
    }

    #[test]
    fn cosine_and_constant_are_as_before() {
        let c = LrSchedule { schedule: Schedule::Cosine, min_ratio: 0.1, ..wsd(DecayShape::Linear) };
        assert!((c.at(10) - 1e-3).abs() < 1e-15);
        assert!((c.at(60) - 0.55e-3).abs() < 1e-12, "{}", c.at(60));
        assert_eq!(LrSchedule { schedule: Schedule::Constant, ..c }.at(100), 1e-3);
    }
}
