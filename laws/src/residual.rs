//! The fitted point a law misses most, in its own data: a form that cannot follow part of the
//! grid (a corner of (N, D), the smallest sizes) shows there before any hold-out does.
use serde::{Deserialize, Serialize};

use crate::holdout::relative_error;

/// Where a law's largest relative residual is, and its size: predicted / measured − 1, as a
/// hold-out error is measured ([`relative_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorstPoint {
    /// The point's first variable (N, D or C).
    pub x: f64,
    /// Its second variable, for two-variable laws (D or S).
    #[serde(default)]
    pub x2: Option<f64>,
    pub error: f64,
}

/// The point of `at` whose predicted log loss is farthest from the observed one; None without
/// points or where a residual is not finite.
pub fn worst_point(
    at: impl IntoIterator<Item = (f64, Option<f64>)>,
    observed_log: &[f64],
    predicted_log: &[f64],
) -> Option<WorstPoint> {
    let mut worst: Option<WorstPoint> = None;
    for ((x, x2), (o, p)) in at.into_iter().zip(observed_log.iter().zip(predicted_log)) {
        let error = relative_error(p.exp(), o.exp());
        if !error.is_finite() {
            return None;
        }
        if worst.is_none_or(|w| error.abs() > w.error.abs()) {
            worst = Some(WorstPoint { x, x2, error });
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_residual_either_way_is_named_with_its_point() {
        let obs = [2.0f64, 1.5, 1.2].map(f64::ln);
        let pred = [2.02f64, 1.44, 1.2].map(f64::ln);
        let w = worst_point([(1.0, Some(10.0)), (2.0, Some(20.0)), (3.0, None)], &obs, &pred).expect("a point");
        assert_eq!((w.x, w.x2), (2.0, Some(20.0)));
        assert!((w.error + 0.04).abs() < 1e-12, "{}", w.error);
        assert_eq!(worst_point([], &[], &[]), None);
        assert_eq!(worst_point([(1.0, None)], &[0.0], &[f64::NAN]), None);
    }
}
