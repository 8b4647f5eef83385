//! The span of the data a law was fitted to, and how far a query lies outside it (in decades):
//! predictions beyond the fitted range are extrapolations and should say so.
use serde::Serialize;

/// The smallest and largest finite positive value a law was fitted on (NaN when there was none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct FitRange {
    pub lo: f64,
    pub hi: f64,
}

impl FitRange {
    /// Min and max of the finite positive values of `xs`; both NaN when there are none.
    pub fn of(xs: &[f64]) -> FitRange {
        let ok = xs.iter().copied().filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = ok.fold((f64::INFINITY, 0.0), |(lo, hi), v| (f64::min(lo, v), f64::max(hi, v)));
        if lo.is_finite() { FitRange { lo, hi } } else { FitRange { lo: f64::NAN, hi: f64::NAN } }
    }

    /// None inside [lo, hi]; otherwise the decades (always positive) from the nearer end:
    /// log10(x/hi) above, log10(lo/x) below. None as well when `x` or the range is not finite
    /// and positive (there is no distance to give).
    pub fn decades_beyond(&self, x: f64) -> Option<f64> {
        let valid = |v: f64| v.is_finite() && v > 0.0;
        if !(valid(x) && valid(self.lo) && valid(self.hi)) {
            return None;
        }
        if x > self.hi {
            Some((x / self.hi).log10())
        } else if x < self.lo {
            Some((self.lo / x).log10())
        } else {
            None
        }
    }
}
