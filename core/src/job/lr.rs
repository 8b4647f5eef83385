//! The peak learning rate: a number, Kaplan et al.'s rule from N, or one that falls as 1/d_model
//! from a reference width. The coordinator resolves it per shape when it plans a sweep and
//! writes the number into each job's config.
use serde::{Deserialize, Serialize};

/// Peak learning rate: a number, `"kaplan"` for Kaplan et al. eq. D.1, or one that falls as
/// 1/d_model from a reference width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LrSpec {
    Value(f64),
    Rule(LrRule),
    PerWidth(PerWidth),
}

/// lr = value · at_d_model / d_model: Adam's learning rate inversely with width (μP's rule for
/// hidden matrices, applied to every parameter), so wider models step less far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerWidth {
    pub value: f64,
    pub at_d_model: i64,
}

impl PerWidth {
    /// The learning rate at `d_model`; None for a width that is not positive.
    pub fn at(&self, d_model: i64) -> Option<f64> {
        (d_model > 0 && self.at_d_model > 0).then(|| self.value * self.at_d_model as f64 / d_model as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrRule {
    Kaplan,
}

impl LrSpec {
    /// The rate for a model of `n` non-embedding parameters and width `d_model` (NaN where the
    /// rule has none: a width that is not positive).
    pub fn at(&self, n: f64, d_model: i64) -> f64 {
        match self {
            LrSpec::Value(v) => *v,
            LrSpec::Rule(LrRule::Kaplan) => kaplan_lr(n),
            LrSpec::PerWidth(w) => w.at(d_model).unwrap_or(f64::NAN),
        }
    }
}

/// Kaplan et al. 2020 eq. D.1: LR(N) ≈ 0.003239 − 0.0001395·ln N.
pub fn kaplan_lr(n: f64) -> f64 {
    0.003239 - 0.0001395 * n.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaplan_rule_matches_eq_d1() {
        // N = 1e6: 0.003239 − 0.0001395·ln(1e6) = 0.00131174 (computed independently in Python).
        assert!((kaplan_lr(1e6) - 0.001_311_736_277).abs() < 1e-11);
    }
}
