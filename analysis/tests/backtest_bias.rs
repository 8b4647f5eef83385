//! A backtest says when a law's intervals are too narrow far from its fit: on a sweep whose truth
//! couples N and D (Kaplan's L(N, D)), Chinchilla's additive form cannot follow it and its
//! intervals miss many of its far predictions; on a sweep whose truth is Chinchilla's form they
//! hold them, and L(N, D)'s hold them on its own truth.
mod common;
use common::run;
use ladder_analysis::backtest::{BIAS_FROM_DECADES, Bias, biases};
use ladder_analysis::options::Options;
use ladder_analysis::{Inputs, fit_all};
use ladder_laws::Law;

/// Six sizes over 1.8 decades of N at eight D, √2 apart (the built-in demo's grid without its
/// 1-layer sizes), each loss `truth(N, D)` with a deterministic ±0.2% wobble.
fn sweep(truth: impl Fn(f64, f64) -> f64) -> Inputs {
    let mut runs = Vec::new();
    for n in [25_472.0, 56_640.0, 100_096.0, 335_712.0, 793_344.0, 1_546_720.0] {
        for k in 0..8 {
            let d = 1.06e5 * 2f64.sqrt().powi(k);
            let wobble = 1.0 + 0.002 * ((n * d).ln() * 7.0).sin();
            runs.push(run(n, 2, d, truth(n, d) * wobble));
        }
    }
    Inputs { source: "synthetic".into(), runs, ..Default::default() }
}

fn bias_of(inputs: &Inputs, law: Law) -> Bias {
    let opts = Options { backtest: true, bootstrap: 200, ..Options::default() };
    let report = fit_all(inputs, &opts).expect("fitted with a backtest");
    let b = biases(&report.backtest, BIAS_FROM_DECADES);
    b.into_iter().find(|b| b.law == law).unwrap_or_else(|| panic!("{law} predicted beyond {BIAS_FROM_DECADES} decades"))
}

/// Kaplan's L(N, D) as the built-in demo fits it: larger models gain more from more data.
fn coupled(n: f64, d: f64) -> f64 {
    ((2.33e8 / n).powf(0.0564 / 0.188) + 7.65e6 / d).powf(0.188)
}

#[test]
fn chinchillas_intervals_miss_where_the_truth_couples_n_and_d() {
    let inputs = sweep(coupled);
    let c = bias_of(&inputs, Law::Chinchilla);
    assert!(c.rows >= 24, "{c:?}");
    assert!(c.under_covered() && c.coverage.is_some_and(|c| c < 0.8), "{c:?}");
    let nd = bias_of(&inputs, Law::ND);
    assert!(!nd.under_covered(), "the true form's intervals hold: {nd:?}");
}

#[test]
fn chinchilla_has_no_bias_where_the_truth_is_its_own_form() {
    let c = bias_of(&sweep(|n, d| 1.2 + 40.0 / n.powf(0.35) + 300.0 / d.powf(0.4)), Law::Chinchilla);
    assert!(c.rows >= 24 && !c.under_covered(), "{c:?}");
}

#[test]
fn under_coverage_needs_enough_rows_and_one_side_needs_four_fifths() {
    let b = |rows, high, coverage: Option<f64>| Bias {
        law: Law::N,
        from: 0.5,
        rows,
        high,
        low: rows - high,
        mean_error: 0.02,
        coverage,
        too_narrow: false,
    };
    assert!(b(10, 8, Some(0.5)).under_covered() && b(10, 8, Some(0.5)).one_sided());
    assert!(!b(10, 7, Some(0.5)).one_sided(), "70% on one side is not one-sided");
    assert!(b(10, 2, Some(0.5)).one_sided(), "eight of ten below");
    assert!(!b(5, 5, Some(0.0)).under_covered(), "five predictions are too few");
    assert!(!b(10, 10, Some(0.9)).under_covered(), "intervals that hold 90% are not flagged");
    assert!(b(10, 0, None).under_covered(), "no intervals hold nothing");
    assert!(b(10, 8, Some(0.5)).judged().too_narrow && !b(5, 5, Some(0.0)).judged().too_narrow);
}
