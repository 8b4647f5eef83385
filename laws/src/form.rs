//! Whether a law carries an irreducible loss E, and the choice between the form with E and the
//! form without by the small-sample Akaike criterion (AICc) on the log-L residuals. Kaplan et
//! al. 2020's forms have no E; Henighan et al. 2020 add one to every law, since a loss near the
//! data's entropy bends the power law. The choice sees only the points being fitted: a hold-out
//! refit chooses again on its own points.
use serde::{Deserialize, Serialize};

/// Which form to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Floor {
    /// Both forms, keeping the lower AICc; without E when too few points score the form with E.
    #[default]
    Auto,
    /// With E.
    With,
    /// Without E (Kaplan's forms).
    Without,
}

/// The AICc of each form on the points fitted (lower is better); E was kept when `with < without`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FormChoice {
    pub aicc_with: f64,
    pub aicc_without: f64,
}

impl FormChoice {
    pub fn keeps_e(&self) -> bool {
        self.aicc_with < self.aicc_without
    }
}

/// AICc of a least-squares fit of `k` constants to `n` points with residual sum of squares `sse`
/// (Gaussian errors of unknown variance, which counts as one more parameter: K = k + 1, as in
/// Burnham & Anderson); None when `n ≤ K + 1`, where it is undefined.
pub fn aicc(sse: f64, n: usize, k: usize) -> Option<f64> {
    let k = k + 1;
    if n <= k + 1 || !sse.is_finite() {
        return None;
    }
    let (n, k) = (n as f64, k as f64);
    // An exact fit (sse = 0) scores as a tiny residual, so that two exact fits tie.
    let mean = (sse / n).max(1e-300);
    Some(n * mean.ln() + 2.0 * k + 2.0 * k * (k + 1.0) / (n - k - 1.0))
}

/// Picks a form: `fit_without` and `fit_with` return (constants, sse on log L); `k` counts the
/// constants without E. Returns the constants, whether they carry E, and the scores under Auto.
pub(crate) fn choose<W, E>(
    floor: Floor,
    n: usize,
    k: usize,
    fit_without: W,
    fit_with: E,
) -> Option<(Vec<f64>, bool, Option<FormChoice>)>
where
    W: FnOnce() -> Option<(Vec<f64>, f64)>,
    E: FnOnce() -> Option<(Vec<f64>, f64)>,
{
    match floor {
        Floor::With => fit_with().map(|(p, _)| (p, true, None)),
        Floor::Without => fit_without().map(|(p, _)| (p, false, None)),
        Floor::Auto => {
            let without = fit_without();
            // With E: k + 1 constants and the variance, so the AICc needs n > k + 3.
            let with = if n > k + 3 { fit_with() } else { None };
            let score = |f: &Option<(Vec<f64>, f64)>, k| f.as_ref().and_then(|(_, sse)| aicc(*sse, n, k));
            match (score(&without, k), score(&with, k + 1)) {
                (Some(a), Some(b)) => {
                    let choice = FormChoice { aicc_with: b, aicc_without: a };
                    let (p, _) = if choice.keeps_e() { with? } else { without? };
                    Some((p, choice.keeps_e(), Some(choice)))
                }
                _ => without.map(|(p, _)| (p, false, None)).or_else(|| with.map(|(p, _)| (p, true, None))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aicc_charges_each_constant_and_the_variance() {
        // n ln(sse/n) + 2K + 2K(K+1)/(n-K-1), K = 2 constants + the variance: 10 ln 0.1 + 6 + 24/6.
        let a = aicc(1.0, 10, 2).expect("defined");
        assert!((a - (10.0 * 0.1f64.ln() + 6.0 + 24.0 / 6.0)).abs() < 1e-12);
        assert_eq!(aicc(1.0, 4, 2), None);
        assert!(aicc(1.0, 5, 2).is_some());
        assert!(aicc(0.0, 10, 2).expect("exact fit").is_finite());
    }

    #[test]
    fn auto_keeps_e_only_when_it_pays_for_its_constant() {
        let fits = |sse_without: f64, sse_with: f64| {
            choose(Floor::Auto, 8, 2, || Some((vec![1.0], sse_without)), || Some((vec![2.0], sse_with)))
        };
        let (p, e, choice) = fits(1.0, 0.1).expect("a form");
        assert!(e && p == vec![2.0] && choice.is_some_and(|c| c.keeps_e()));
        // A 5% smaller residual does not pay for a constant.
        let (p, e, _) = fits(1.0, 0.95).expect("a form");
        assert!(!e && p == vec![1.0]);
        // Too few points to score the form with E (2 constants, E and the variance): without.
        let (_, e, choice) =
            choose(Floor::Auto, 5, 2, || Some((vec![1.0], 1.0)), || Some((vec![2.0], 0.0))).expect("a form");
        assert!(!e && choice.is_none());
    }
}
