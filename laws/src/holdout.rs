//! Hold-out checks: a law fitted without some runs, asked to predict them. The error is
//! relative, (predicted − actual)/actual, with the prediction band carried over the same way.
use serde::Serialize;

use crate::bootstrap::Estimate;

/// (predicted − actual)/actual: positive when the law over-predicts.
pub fn relative_error(predicted: f64, actual: f64) -> f64 {
    (predicted - actual) / actual
}

/// One held-out point: what the law predicted for it and how far off that was.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HoldoutError {
    pub label: String,
    /// Where the law was evaluated (N, D, C, …).
    pub x: f64,
    pub actual: f64,
    pub predicted: f64,
    /// value: the relative error of `predicted`; lo, hi: those of the band's ends (so for a
    /// positive `actual`, lo ≤ hi, and the band covers the truth iff lo ≤ 0 ≤ hi).
    pub error: Estimate,
}

impl HoldoutError {
    /// `band` is the law's prediction band (lo, hi) at `x`; NaN ends give NaN bounds.
    pub fn new(label: impl Into<String>, x: f64, actual: f64, predicted: f64, band: (f64, f64)) -> Self {
        let error = Estimate {
            value: relative_error(predicted, actual),
            lo: relative_error(band.0, actual),
            hi: relative_error(band.1, actual),
        };
        HoldoutError { label: label.into(), x, actual, predicted, error }
    }
}
