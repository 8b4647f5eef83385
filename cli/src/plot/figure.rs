//! What a figure is, apart from how it is drawn: its series (points, a mark, a colour), an
//! optional band and colour bar, and the helpers the figure builders share (runs coloured by N on
//! a log scale, log-spaced x values for a fitted law).
use plotters::style::RGBColor;

use ladder_analysis::Inputs;
use ladder_analysis::inputs::CurvePoint;

use super::style::{log_position, viridis};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mark {
    Line,
    Dashed,
    Points,
    /// A lower bound: an upward triangle.
    Bound,
}

pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
    pub(crate) mark: Mark,
    pub(crate) color: RGBColor,
}

pub(crate) struct Chart {
    pub(crate) file: &'static str,
    pub(crate) title: String,
    pub(crate) x: &'static str,
    pub(crate) y: &'static str,
    pub(crate) series: Vec<Series>,
    /// (x, lo, hi): a shaded band.
    pub(crate) band: Vec<(f64, f64, f64)>,
    /// The N range the series' colours map (viridis on log N), shown as a colour bar.
    pub(crate) colour_bar: Option<(f64, f64)>,
}

pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) fn positive(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && p.0 > 0.0 && p.1 > 0.0
}

pub(crate) fn logspace(lo: f64, hi: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (k - 1) as f64).exp()).collect()
}

/// The range of N over the runs: the colour bar's.
pub(crate) fn n_range(inputs: &Inputs) -> Option<(f64, f64)> {
    let ns = inputs.curves.iter().map(|c| c.n).filter(|n| n.is_finite() && *n > 0.0);
    let (lo, hi) = ns.fold((f64::INFINITY, 0.0f64), |(a, b), n| (a.min(n), b.max(n)));
    lo.is_finite().then_some((lo, hi))
}

/// A run's colour: its N on the colour bar.
pub(crate) fn n_colour(inputs: &Inputs, n: f64) -> RGBColor {
    let (lo, hi) = n_range(inputs).unwrap_or((n, n));
    viridis(log_position(n, lo, hi))
}

/// One line per run of `f` of its points, coloured by N (the colour bar names them).
pub(crate) fn per_run(inputs: &Inputs, f: &dyn Fn(&CurvePoint) -> Option<(f64, f64)>) -> Vec<Series> {
    inputs
        .curves
        .iter()
        .map(|c| Series {
            name: String::new(),
            points: c.points.iter().filter_map(f).collect(),
            mark: Mark::Line,
            color: n_colour(inputs, c.n),
        })
        .collect()
}
