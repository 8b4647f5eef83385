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
/// (Gaussian errors of unknown variance); None when `n ≤ k + 1`, where it is undefined.
pub fn aicc(sse: f64, n: usize, k: usize) -> Option<f64> {
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
            let with = if n > k + 2 { fit_with() } else { None };
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
    fn aicc_charges_each_constant_and_needs_two_spare_points() {
        // n ln(sse/n) + 2k + 2k(k+1)/(n-k-1): 10 ln(0.1) + 4 + 12/7.
        let a = aicc(1.0, 10, 2).expect("defined");
        assert!((a - (10.0 * 0.1f64.ln() + 4.0 + 12.0 / 7.0)).abs() < 1e-12);
        assert_eq!(aicc(1.0, 3, 2), None);
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
        // Too few points to score the form with E: without.
        let (_, e, choice) =
            choose(Floor::Auto, 4, 2, || Some((vec![1.0], 1.0)), || Some((vec![2.0], 0.0))).expect("a form");
        assert!(!e && choice.is_none());
    }
}
