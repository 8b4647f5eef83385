//! The figure builders on data: what each chart holds, before anything is drawn.
use ladder_analysis::inputs::{CurvePoint, RunCurve, RunKind, RunPoint};
use ladder_analysis::{Inputs, Report};

use super::figure::{Chart, Mark};
use super::style::viridis;

const NS: [f64; 5] = [1e4, 3e4, 1e5, 3e5, 1e6];

fn loss(n: f64) -> f64 {
    (5e3 / n).powf(0.3) + 1.0
}

/// Five runs on L(N) = (5e3/N)^0.3 + 1, each with a curve falling to that loss; B_simple only on
/// the largest when `b_simple`.
fn inputs(b_simple: bool) -> Inputs {
    let curve = |job: u64, n: f64| RunCurve {
        job,
        label: format!("job {job}"),
        n,
        b: 1024.0,
        warmup_steps: 0.0,
        data_limited: false,
        kind: RunKind::Run,
        parent: None,
        points: (1..=20)
            .map(|k| {
                let (step, tokens) = (k as f64, k as f64 * 1024.0);
                let l = loss(n) + 1.0 / step;
                let b = (b_simple && n == 1e6).then_some(500.0 * step);
                CurvePoint { step, tokens, flops: 6.0 * n * tokens, train: l, smooth: l, val: None, b_simple: b }
            })
            .collect(),
    };
    let run = |job: u64, n: f64| RunPoint {
        job: Some(job),
        n: Some(n),
        layers: None,
        d: None,
        tokens: Some(20_480.0),
        b: Some(1024.0),
        s: Some(20.0),
        c: Some(6.0 * n * 20_480.0),
        loss: loss(n),
        d_limit: f64::INFINITY,
        group: String::new(),
        branch: None,
    };
    Inputs {
        source: "test".into(),
        runs: NS.iter().enumerate().map(|(i, &n)| run(i as u64 + 1, n)).collect(),
        curves: NS.iter().enumerate().map(|(i, &n)| curve(i as u64 + 1, n)).collect(),
        ..Default::default()
    }
}

fn report(inputs: &Inputs) -> Report {
    ladder_analysis::fit::fit_laws(inputs, &Default::default())
}

fn chart<'a>(charts: &'a [Chart], file: &str) -> &'a Chart {
    charts.iter().find(|c| c.file == file).unwrap_or_else(|| panic!("no {file} among {:?}", names(charts)))
}

fn names(charts: &[Chart]) -> Vec<&str> {
    charts.iter().map(|c| c.file).collect()
}

#[test]
fn loss_against_tokens_has_one_line_per_run_coloured_by_n() {
    let i = inputs(false);
    let charts = super::charts(&i, &report(&i));
    let c = chart(&charts, "fig2_loss_vs_tokens");
    assert_eq!(c.series.len(), 5);
    assert_eq!(c.colour_bar, Some((1e4, 1e6)));
    assert!(c.series.iter().all(|s| s.mark == Mark::Line && s.points.len() == 20));
    assert_eq!(c.series[0].points[0], (1024.0, loss(1e4) + 1.0));
    // The smallest N at one end of the colour bar, the largest at the other.
    assert_eq!(c.series[0].color, viridis(0.0));
    assert_eq!(c.series[4].color, viridis(1.0));
}

#[test]
fn l_of_n_shows_the_runs_fitted_and_the_law_through_them() {
    let i = inputs(false);
    let r = report(&i);
    let law = r.l_n.as_ref().expect("L(N) fitted on five sizes");
    let charts = super::charts(&i, &r);
    let c = chart(&charts, "fig1_l_of_n");
    let runs = c.series.iter().find(|s| s.mark == Mark::Points).expect("the runs");
    let mut xs: Vec<f64> = runs.points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    assert_eq!(xs, NS.to_vec());
    let fit = c.series.iter().find(|s| s.mark == Mark::Dashed).expect("the law");
    assert_eq!(fit.points.len(), 60);
    // The line spans half the smallest N to twice the largest and is the law's own prediction.
    assert!((fit.points[0].0 - 5e3).abs() < 1e-6 && (fit.points[59].0 - 2e6).abs() < 1e-3, "{:?}", fit.points);
    for &(x, y) in &fit.points {
        assert!((y - law.predict(x)).abs() < 1e-12);
    }
    assert!(fit.name.starts_with("fit: ") && fit.name.contains("R²"), "{}", fit.name);
}

#[test]
fn a_chart_with_no_positive_point_is_left_out() {
    let without = inputs(false);
    assert!(!names(&super::charts(&without, &report(&without))).contains(&"b_simple"));
    let with = inputs(true);
    let charts = super::charts(&with, &report(&with));
    let c = chart(&charts, "b_simple");
    let drawn: Vec<_> = c.series.iter().filter(|s| !s.points.is_empty()).collect();
    assert_eq!(drawn.len(), 1, "only the largest run measured B_simple");
    assert_eq!(drawn[0].points.last(), Some(&(20_480.0, 10_000.0)));
}

#[test]
fn nothing_to_plot_means_no_charts() {
    let empty = Inputs::default();
    assert!(super::charts(&empty, &report(&empty)).is_empty());
}
