//! The figures of the batch size: B_crit(L) from the batch sweep and from branching, with the
//! streamed B_simple beside them.
use plotters::style::RGBColor;

use ladder_analysis::{Inputs, Report};
use ladder_laws::Law;

use super::figure::{Chart, Mark, Series, color, logspace, n_colour};
use super::style::label;

/// Fig. 10: B_crit against loss, B_crit(L), and the streamed B_simple beside them.
pub(crate) fn bcrit_chart(inputs: &Inputs, report: &Report) -> Option<Chart> {
    let mut series = cbs_series(inputs, report);
    if !report.bcrit_at.is_empty() {
        series.push(Series {
            name: format!("{} from the batch sweep", Law::BCrit),
            points: report.bcrit_at.iter().map(|b| (b.target_loss, b.b_crit.value)).collect(),
            mark: Mark::Points,
            color: color(3),
        });
    }
    if let Some(law) = &report.bcrit_law {
        let (lo, hi) = report
            .bcrit_at
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.target_loss), b.max(p.target_loss)));
        series.push(Series {
            name: format!("{} = {:.2e}/L^(1/{:.3})", Law::BCritL, law.b_star.value, law.alpha_b.value),
            points: logspace(lo, hi, 40).into_iter().map(|l| (l, law.predict(l))).collect(),
            mark: Mark::Dashed,
            color: RGBColor(0, 0, 0),
        });
    }
    if !report.bcrit_vs_simple.is_empty() {
        series.push(Series {
            name: "B_simple (streamed) where the runs reached each L".into(),
            points: report.bcrit_vs_simple.iter().map(|v| (v.target_loss, v.b_simple)).collect(),
            mark: Mark::Points,
            color: color(2),
        });
    }
    if !report.b_simple.is_empty() && report.cbs.is_empty() {
        series.push(Series {
            name: "B_simple (streamed, end of run)".into(),
            points: report.b_simple.iter().map(|b| (b.loss, b.b_simple)).collect(),
            mark: Mark::Points,
            color: color(0),
        });
    }
    (!series.is_empty()).then(|| Chart {
        file: "fig10_b_crit",
        title: "Critical batch size against loss (Kaplan fig. 10)".into(),
        x: "loss",
        y: "batch (tokens)",
        series,
        band: vec![],
        colour_bar: None,
    })
}

/// The CBS by branching at each branch point (coloured by N; triangles where every batch kept up,
/// a lower bound), CBS(L) fitted to them, and the streamed B_simple at the same points.
pub(crate) fn cbs_series(inputs: &Inputs, report: &Report) -> Vec<Series> {
    let mut out = Vec::new();
    for n in ladder_analysis::select::distinct_values(report.cbs.iter().map(|p| p.n)) {
        let at = |bound: bool| -> Vec<(f64, f64)> {
            report.cbs.iter().filter(|p| p.n == n && p.lower_bound == bound).map(|p| (p.loss, p.cbs)).collect()
        };
        let col = n_colour(inputs, n);
        out.push(Series {
            name: format!("{} by branching, N = {}", Law::Cbs, label(&n)),
            points: at(false),
            mark: Mark::Points,
            color: col,
        });
        let bounds = at(true);
        if !bounds.is_empty() {
            out.push(Series {
                name: format!("{} ≥ (a bound), N = {}", Law::Cbs, label(&n)),
                points: bounds,
                mark: Mark::Bound,
                color: col,
            });
        }
    }
    if let Some(law) = &report.cbs_law {
        let (lo, hi) = report.cbs.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.loss), b.max(p.loss)));
        out.push(Series {
            name: format!("{} = {}/L^(1/{:.2})", Law::CbsL, label(&law.b_star.value), law.alpha_b.value),
            points: logspace(lo, hi, 40).into_iter().map(|l| (l, law.predict(l))).collect(),
            mark: Mark::Dashed,
            color: RGBColor(0, 0, 0),
        });
    }
    let simple: Vec<(f64, f64)> = report.cbs.iter().filter_map(|p| p.b_simple.map(|b| (p.loss, b))).collect();
    if !simple.is_empty() {
        out.push(Series {
            name: "B_simple (streamed) at the branch points".into(),
            points: simple,
            mark: Mark::Points,
            color: RGBColor(150, 150, 150),
        });
    }
    out
}
