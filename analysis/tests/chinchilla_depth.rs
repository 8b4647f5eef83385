//! The fits leave 1-layer sizes out by default (Kaplan et al. 2020, Fig. 6: they fall off the
//! deeper models' trend), say so in the report, and keep them on request.
mod common;
use common::run;
use ladder_analysis::Inputs;
use ladder_analysis::fit_all;
use ladder_analysis::options::Options;

/// The true law of the deeper sizes.
const E: f64 = 1.2;
const A: f64 = 40.0;
const ALPHA: f64 = 0.35;
const B: f64 = 300.0;
const BETA: f64 = 0.4;

/// Two 1-layer sizes 15% above the law (off the trend), four deeper sizes on it.
fn inputs() -> Inputs {
    let sizes: [(f64, u32, f64); 6] =
        [(3e3, 1, 1.15), (1e4, 1, 1.15), (3e4, 2, 1.0), (1e5, 2, 1.0), (3e5, 3, 1.0), (1e6, 4, 1.0)];
    let mut runs = Vec::new();
    for (n, layers, off) in sizes {
        for d in [2e5f64, 4e5, 8e5, 1.6e6, 3.2e6] {
            // A deterministic ±0.3% wobble so the fit is not exact.
            let wobble = 1.0 + 0.003 * ((n * d).ln() * 7.0).sin();
            let loss = (E + A / f64::powf(n, ALPHA) + B / f64::powf(d, BETA)) * off * wobble;
            runs.push(run(n, layers, d, loss));
        }
    }
    Inputs { source: "synthetic".into(), runs, ..Default::default() }
}

#[test]
fn one_layer_sizes_are_left_out_of_every_fit_by_default() {
    let report = fit_all(&inputs(), &Options { bootstrap: 20, ..Options::default() }).expect("fitted");
    assert_eq!(report.shallow_sizes, vec![3e3, 1e4]);
    assert_eq!(report.min_layers, 2);
    assert_eq!(report.runs, 20);
    let nd = report.l_nd.as_ref().expect("L(N, D) fitted");
    assert_eq!(nd.n_range.lo, 3e4);
    let c = report.chinchilla.expect("Chinchilla fitted");
    assert_eq!(c.fit.runs, 20, "the four deeper sizes' runs");
    assert_eq!(c.fit.n_range.lo, 3e4);
    assert!((c.fit.alpha - ALPHA).abs() < 0.05, "α {} against {ALPHA}", c.fit.alpha);
    let truth = E + A / 3e6f64.powf(ALPHA) + B / 3.2e6f64.powf(BETA);
    let predicted = c.fit.predict(3e6, 3.2e6);
    assert!((predicted / truth - 1.0).abs() < 0.01, "predicted {predicted} against {truth}");
}

#[test]
fn min_layers_1_keeps_every_size_and_the_off_trend_ones_bend_the_fit() {
    let opts = Options { bootstrap: 20, min_layers: Some(1), ..Options::default() };
    let report = fit_all(&inputs(), &opts).expect("fitted");
    assert!(report.shallow_sizes.is_empty());
    assert_eq!(report.runs, 30);
    let c = report.chinchilla.expect("Chinchilla fitted");
    assert_eq!(c.fit.runs, 30);
    assert_eq!(c.fit.n_range.lo, 3e3);
    let truth = E + A / 3e6f64.powf(ALPHA) + B / 3.2e6f64.powf(BETA);
    let predicted = c.fit.predict(3e6, 3.2e6);
    assert!(
        (predicted / truth - 1.0).abs() > 0.01,
        "the 1-layer sizes moved the extrapolation: {predicted} against {truth}"
    );
}

#[test]
fn every_size_stays_where_fewer_than_three_deeper_ones_would_be_left() {
    let mut inputs = inputs();
    // Only 3e4 and 1e5 stay deeper than one layer.
    inputs.runs.retain(|r| r.n.is_some_and(|n| n <= 1e5));
    let report = fit_all(&inputs, &Options { bootstrap: 20, ..Options::default() }).expect("fitted");
    assert!(report.shallow_sizes.is_empty());
    assert_eq!(report.runs, 20);
}
