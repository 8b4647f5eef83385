//! Prediction intervals: where a new run's loss should fall, not only where the law's mean lies.
//! A bootstrap band covers the fitted curve; a run scatters about it by the fit's residuals (the
//! seed, the data order, what the form cannot follow). The interval adds that scatter to each
//! resample's prediction: log L̂_draw + σ·z, z standard normal, σ the residual standard deviation
//! on log L with the degrees of freedom the constants used.
use crate::bootstrap::{SplitMix64, central};

/// Normal draws added to each resample's prediction.
const SCATTER_PER_DRAW: usize = 64;

/// Serde's default for a residual standard deviation a report was written without.
pub(crate) fn unknown() -> f64 {
    f64::NAN
}

/// The residual standard deviation on log L: √(Σ r² / (points − constants)); NaN when there are
/// no degrees of freedom left.
pub fn residual_sd(observed_log: &[f64], predicted_log: &[f64], constants: usize) -> f64 {
    let n = observed_log.len().min(predicted_log.len());
    if n <= constants {
        return f64::NAN;
    }
    let sse: f64 = observed_log.iter().zip(predicted_log).map(|(o, p)| (o - p).powi(2)).sum();
    (sse / (n - constants) as f64).sqrt()
}

/// The central `level` prediction interval from the resamples' predictions at one point and the
/// residual standard deviation `sd` on log L. NaN ends without resamples (the constants'
/// uncertainty is then unknown, and the scatter alone would understate it); a NaN or zero `sd`
/// gives the band alone. Deterministic: the normal draws are seeded.
pub fn prediction_interval(draw_predictions: impl IntoIterator<Item = f64>, sd: f64, level: f64) -> (f64, f64) {
    let preds: Vec<f64> = draw_predictions.into_iter().filter(|p| p.is_finite() && *p > 0.0).collect();
    if preds.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    if !(sd.is_finite() && sd > 0.0) {
        return central(preds, level);
    }
    let mut rng = SplitMix64::new(0x005e_ed0f_5ca7);
    let mut values = Vec::with_capacity(preds.len() * SCATTER_PER_DRAW);
    for p in preds {
        let lp = p.ln();
        for _ in 0..SCATTER_PER_DRAW {
            values.push((lp + sd * rng.normal()).exp());
        }
    }
    central(values, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_residual_sd_counts_the_constants_fitted() {
        let obs = [0.0, 0.0, 0.0, 0.0];
        let pred = [0.1, -0.1, 0.1, -0.1];
        // Σ r² = 0.04 over 4 − 2 degrees of freedom.
        assert!((residual_sd(&obs, &pred, 2) - 0.02f64.sqrt()).abs() < 1e-12);
        assert!(residual_sd(&obs, &pred, 4).is_nan());
    }

    #[test]
    fn the_interval_adds_the_scatter_to_the_band() {
        // One resample at 2.0 and σ = 0.1: about 2·e^{±1.96·0.1} = [1.64, 2.44].
        let (lo, hi) = prediction_interval(vec![2.0; 50], 0.1, 0.95);
        assert!((lo / 2.0).ln() > -0.21 && (lo / 2.0).ln() < -0.18, "{lo}");
        assert!((hi / 2.0).ln() < 0.21 && (hi / 2.0).ln() > 0.18, "{hi}");
        // No scatter: the band itself; no resamples: no interval.
        assert_eq!(prediction_interval([1.0, 3.0], 0.0, 1.0), (1.0, 3.0));
        let none = prediction_interval(Vec::new(), 0.1, 0.95);
        assert!(none.0.is_nan() && none.1.is_nan());
    }
}
