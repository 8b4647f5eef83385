//! Hold-out checks: a law fitted without some runs, asked to predict them. The error is
//! relative, (predicted − actual)/actual, with the prediction interval carried over the same way,
//! and beside it what two naive guesses would have said: a law that cannot beat them has not
//! earned its extrapolation.
use serde::Serialize;

use crate::bootstrap::Estimate;
use crate::law::Law;

/// (predicted − actual)/actual: positive when the law over-predicts.
pub fn relative_error(predicted: f64, actual: f64) -> f64 {
    (predicted - actual) / actual
}

/// One held-out point: what the law predicted for it and how far off that was.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HoldoutError {
    pub law: Law,
    /// Where the law was evaluated: its first variable (N, or C for L(C_min))…
    pub x: f64,
    /// …and its second (D), for the two-variable laws.
    #[serde(default)]
    pub x2: Option<f64>,
    pub actual: f64,
    pub predicted: f64,
    /// value: the relative error of `predicted`; lo, hi: those of the band's ends (so for a
    /// positive `actual`, lo ≤ hi, and the band covers the truth iff lo ≤ 0 ≤ hi).
    pub error: Estimate,
    /// What naive guesses from the fitted data predicted at the same point.
    #[serde(default)]
    pub baselines: Baselines,
}

/// Two naive predictions of a held-out run from the fitted ones nearest it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Baselines {
    /// Persistence: the loss of the largest fitted size at the same D (or the largest fitted
    /// compute, for L(C_min)).
    pub persistence: Option<f64>,
    /// A straight line in log–log through the two largest fitted sizes at the same D.
    pub two_point: Option<f64>,
}

impl Baselines {
    /// The baselines at `x` from fitted `(x, loss)` points; several losses at one x (seeds) are
    /// averaged on log L. None where fewer than one (two) fitted x lie below `x`.
    pub fn from_fitted(fitted: impl IntoIterator<Item = (f64, f64)>, x: f64) -> Baselines {
        let mut by_x: Vec<(f64, f64, usize)> = Vec::new();
        for (fx, loss) in fitted {
            if !(fx.is_finite() && fx > 0.0 && fx < x && loss.is_finite() && loss > 0.0) {
                continue;
            }
            match by_x.iter_mut().find(|e| e.0 == fx) {
                Some(e) => {
                    e.1 += loss.ln();
                    e.2 += 1;
                }
                None => by_x.push((fx, loss.ln(), 1)),
            }
        }
        by_x.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mean = |e: &(f64, f64, usize)| (e.0.ln(), e.1 / e.2 as f64);
        let last = by_x.last().map(mean);
        let two_point = match by_x.len() {
            n if n >= 2 => {
                let ((x1, l1), (x2, l2)) = (mean(&by_x[n - 2]), mean(&by_x[n - 1]));
                Some((l2 + (l2 - l1) / (x2 - x1) * (x.ln() - x2)).exp())
            }
            _ => None,
        };
        Baselines { persistence: last.map(|(_, l)| l.exp()), two_point }
    }
}

impl HoldoutError {
    /// `band` is the law's prediction band (lo, hi) at the point; NaN ends give NaN bounds.
    pub fn new(law: Law, (x, x2): (f64, Option<f64>), actual: f64, predicted: f64, band: (f64, f64)) -> Self {
        let error = Estimate {
            value: relative_error(predicted, actual),
            lo: relative_error(band.0, actual),
            hi: relative_error(band.1, actual),
        };
        HoldoutError { law, x, x2, actual, predicted, error, baselines: Baselines::default() }
    }

    pub fn with_baselines(self, baselines: Baselines) -> Self {
        HoldoutError { baselines, ..self }
    }

    /// |relative error| of the persistence and the two-point baselines.
    pub fn baseline_errors(&self) -> (Option<f64>, Option<f64>) {
        let err = |p: Option<f64>| p.map(|p| relative_error(p, self.actual).abs());
        (err(self.baselines.persistence), err(self.baselines.two_point))
    }

    /// `L(N,D) at D = 1.06e5`: the law, and where along its second variable.
    pub fn label(&self) -> String {
        match (self.x2, self.law.variables().1) {
            (Some(v), Some(name)) => format!("{} at {name} = {v:.3e}", self.law),
            _ => self.law.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_takes_the_largest_fitted_size_and_the_line_the_two_largest() {
        // Seeds at x = 4 average on log L: √(2·8) = 4.
        let fitted = [(1.0, 9.0), (2.0, 8.0), (4.0, 2.0), (4.0, 8.0), (16.0, 1.0)];
        let b = Baselines::from_fitted(fitted, 8.0);
        assert!((b.persistence.unwrap() - 4.0).abs() < 1e-12, "{b:?}");
        // Through (2, 8) and (4, 4): L = 16/x, so 2 at x = 8.
        assert!((b.two_point.unwrap() - 2.0).abs() < 1e-12, "{b:?}");
        let one = Baselines::from_fitted([(1.0, 3.0)], 2.0);
        assert!(one.persistence.is_some_and(|p| (p - 3.0).abs() < 1e-12) && one.two_point.is_none(), "{one:?}");
        assert_eq!(Baselines::from_fitted([(4.0, 3.0)], 2.0), Baselines::default());
    }
}
