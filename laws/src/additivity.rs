//! A test of the assumption in Chinchilla's form. L = E + A/N^α + B/D^β is additive in N and D,
//! so the loss a model gains from more data, L(N, D_lo) − L(N, D_hi), is B·(D_lo^−β − D_hi^−β)
//! at every N. Kaplan's L(N, D) couples the two: larger models gain more. Regressing each size's
//! gain on log10 N tests the assumption on the runs themselves, before any prediction is made.
//! A slope whose 95% interval excludes 0 means Chinchilla cannot follow the data there: with a
//! positive slope it gives sizes beyond the fitted ones too little gain, and over-predicts their
//! loss at large D.
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::bootstrap::Estimate;
use crate::chinchilla::{ChinchillaFit, Run};

/// Sizes needed: three leave one degree of freedom for the slope's interval.
pub const MIN_SIZES: usize = 3;

/// A slope smaller than this (nats per decade of N) is no coupling, whatever its interval: on
/// exact data from an additive law the residuals vanish and rounding alone would reject.
pub const NEGLIGIBLE_SLOPE: f64 = 1e-6;

/// One size's gain from D_lo to D_hi (each loss the mean over the runs at that N and D).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SizeGain {
    pub n: f64,
    /// L(N, D_lo) − L(N, D_hi), nats.
    pub gain: f64,
    /// Runs averaged at D_lo and at D_hi (seeds).
    pub runs: usize,
}

/// The gain from D_lo to D_hi at each size, and how it changes with N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Additivity {
    /// The smallest and largest D that every size was trained to.
    pub d_lo: f64,
    pub d_hi: f64,
    /// In order of N.
    pub sizes: Vec<SizeGain>,
    /// Ordinary least squares slope of the gain on log10 N (nats per decade of N), with its 95%
    /// interval from Student's t on sizes − 2 degrees of freedom.
    pub slope: Estimate,
    /// The mean gain over the sizes: an additive law's one gain.
    pub mean_gain: f64,
    /// The slope's interval excludes 0: the gain from data depends on N.
    pub rejected: bool,
    /// Chinchilla's own gain from D_lo to D_hi, the same at every N, where it was fitted
    /// ([`Additivity::with_fit`]; [`ChinchillaFit::gain`]).
    #[serde(default)]
    pub fit_gain: Option<f64>,
}

impl Additivity {
    /// This test with the gain `fit` gives over the same D (None without a fit).
    pub fn with_fit(self, fit: Option<&ChinchillaFit>) -> Self {
        let fit_gain = fit.map(|f| f.gain(self.d_lo, self.d_hi)).filter(|g| g.is_finite());
        Additivity { fit_gain, ..self }
    }
}

/// Exact equality of D: a sweep's runs share a D grid; a CSV's repeat the same text.
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Mean loss of the runs at (n, d); None when there is none.
fn mean_at(runs: &[Run], n: f64, d: f64) -> Option<(f64, usize)> {
    let losses: Vec<f64> = runs.iter().filter(|r| same(r.n, n) && same(r.d, d)).map(|r| r.loss).collect();
    (!losses.is_empty()).then(|| (losses.iter().sum::<f64>() / losses.len() as f64, losses.len()))
}

fn distinct_sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| same(*a, *b));
    v
}

/// The test on `runs`; None when fewer than [`MIN_SIZES`] sizes share two D values, or the
/// sizes' N do not vary.
pub fn additivity(runs: &[Run]) -> Option<Additivity> {
    let runs: Vec<Run> = runs
        .iter()
        .copied()
        .filter(|r| r.n.is_finite() && r.n > 0.0 && r.d.is_finite() && r.loss.is_finite())
        .collect();
    let ns = distinct_sorted(runs.iter().map(|r| r.n).collect());
    let shared: Vec<f64> = distinct_sorted(runs.iter().map(|r| r.d).collect())
        .into_iter()
        .filter(|&d| ns.iter().all(|&n| mean_at(&runs, n, d).is_some()))
        .collect();
    if ns.len() < MIN_SIZES || shared.len() < 2 {
        return None;
    }
    let (d_lo, d_hi) = (shared[0], shared[shared.len() - 1]);
    let sizes: Vec<SizeGain> = ns
        .iter()
        .filter_map(|&n| {
            let (lo, k_lo) = mean_at(&runs, n, d_lo)?;
            let (hi, k_hi) = mean_at(&runs, n, d_hi)?;
            Some(SizeGain { n, gain: lo - hi, runs: k_lo.min(k_hi) })
        })
        .collect();
    let slope = ols_slope(&sizes)?;
    let mean_gain = sizes.iter().map(|s| s.gain).sum::<f64>() / sizes.len() as f64;
    // Finite losses can still overflow a difference; a NaN would not survive JSON (null).
    let finite = [d_lo, d_hi, mean_gain, slope.value, slope.lo, slope.hi].iter().all(|v| v.is_finite())
        && sizes.iter().all(|s| s.gain.is_finite());
    if !finite {
        return None;
    }
    let rejected = !slope.contains(0.0) && slope.value.abs() > NEGLIGIBLE_SLOPE;
    Some(Additivity { d_lo, d_hi, sizes, rejected, slope, mean_gain, fit_gain: None })
}

/// The slope of gain on log10 N with its 95% t-interval; None when N does not vary.
fn ols_slope(sizes: &[SizeGain]) -> Option<Estimate> {
    let k = sizes.len() as f64;
    let x: Vec<f64> = sizes.iter().map(|s| s.n.log10()).collect();
    let y: Vec<f64> = sizes.iter().map(|s| s.gain).collect();
    let (mx, my) = (x.iter().sum::<f64>() / k, y.iter().sum::<f64>() / k);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let b = x.iter().zip(&y).map(|(xi, yi)| (xi - mx) * (yi - my)).sum::<f64>() / sxx;
    let a = my - b * mx;
    let df = k - 2.0;
    let sse: f64 = x.iter().zip(&y).map(|(xi, yi)| (yi - a - b * xi).powi(2)).sum();
    let se = (sse / df / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(0.975);
    Some(Estimate { value: b, lo: b - t * se, hi: b + t * se })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(gain_per_decade: f64) -> Vec<Run> {
        let mut runs = Vec::new();
        for (i, n) in [1e4_f64, 1e5, 1e6, 1e7].into_iter().enumerate() {
            let noise = [0.001, -0.002, 0.002, -0.001][i];
            for d in [1e5, 1e6, 1e7] {
                let base = 2.0 + 1e2 / n.powf(0.3) + 30.0 / f64::powf(d, 0.3);
                let extra = if d > 1e5 { gain_per_decade * (n.log10() - 4.0) } else { 0.0 };
                runs.push(Run { n, d, loss: base - extra + noise * (d.log10() - 5.0) });
            }
        }
        runs
    }

    #[test]
    fn an_additive_sweep_is_not_rejected_and_a_coupled_one_is() {
        let flat = additivity(&sweep(0.0)).expect("four sizes share three D");
        assert_eq!((flat.d_lo, flat.d_hi, flat.sizes.len()), (1e5, 1e7, 4));
        assert!(!flat.rejected, "{:?}", flat.slope);
        let coupled = additivity(&sweep(0.05)).expect("four sizes share three D");
        assert!(coupled.rejected, "{:?}", coupled.slope);
        assert!((coupled.slope.value - 0.05).abs() < 0.01, "{:?}", coupled.slope);
    }

    #[test]
    fn the_interval_uses_students_t_on_sizes_minus_two_degrees_of_freedom() {
        // Three sizes on a line but for one residual: t(1) = 12.706, so half-width = 12.706·se.
        let sizes: Vec<SizeGain> =
            [(1e4, 0.5), (1e5, 0.6), (1e6, 0.8)].into_iter().map(|(n, gain)| SizeGain { n, gain, runs: 1 }).collect();
        let e = ols_slope(&sizes).expect("N varies");
        // x = 4, 5, 6 (Sxx = 2): slope 0.15, residuals (1, −2, 1)/60, SSE = 6/3600, se = √(SSE/1/2).
        let half = 12.706_2 * (6.0 / 3600.0 / 2.0_f64).sqrt();
        assert!((e.value - 0.15).abs() < 1e-12 && ((e.hi - e.value) - half).abs() < 1e-4, "{e:?}");
    }

    #[test]
    fn overflowing_losses_give_no_test() {
        let mut runs = sweep(0.0);
        runs[0].loss = f64::MAX;
        runs[2].loss = -f64::MAX;
        assert!(additivity(&runs).is_none());
    }

    #[test]
    fn exact_additive_data_holds() {
        let exact: Vec<Run> = sweep(0.0)
            .into_iter()
            .map(|r| Run { loss: 2.0 + 1e2 / r.n.powf(0.3) + 30.0 / r.d.powf(0.3), ..r })
            .collect();
        let a = additivity(&exact).expect("four sizes share three D");
        assert!(!a.rejected, "{:?}", a.slope);
    }

    #[test]
    fn too_few_sizes_or_shared_d_give_no_test() {
        let runs = sweep(0.0);
        let two: Vec<Run> = runs.iter().copied().filter(|r| r.n < 2e5).collect();
        assert!(additivity(&two).is_none());
        let unshared: Vec<Run> = runs.iter().copied().filter(|r| !(r.n == 1e7 && r.d == 1e7)).collect();
        // 1e7 tokens is no longer shared by every size: the test runs from 1e5 to 1e6.
        assert_eq!(additivity(&unshared).map(|a| a.d_hi), Some(1e6));
    }
}
