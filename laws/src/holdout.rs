//! Hold-out checks: a law fitted without some runs, asked to predict them. The error is
//! relative, (predicted − actual)/actual, with the prediction band carried over the same way.
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
}

impl HoldoutError {
    /// `band` is the law's prediction band (lo, hi) at the point; NaN ends give NaN bounds.
    pub fn new(law: Law, (x, x2): (f64, Option<f64>), actual: f64, predicted: f64, band: (f64, f64)) -> Self {
        let error = Estimate {
            value: relative_error(predicted, actual),
            lo: relative_error(band.0, actual),
            hi: relative_error(band.1, actual),
        };
        HoldoutError { law, x, x2, actual, predicted, error }
    }

    /// `L(N,D) at D = 1.06e5`: the law, and where along its second variable.
    pub fn label(&self) -> String {
        match (self.x2, self.law.variables().1) {
            (Some(v), Some(name)) => format!("{} at {name} = {v:.3e}", self.law),
            _ => self.law.to_string(),
        }
    }
}
