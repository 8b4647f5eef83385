//! The figures of the curves themselves: Fig. 2 (loss against tokens), Fig. 1 (loss against
//! compute, with the frontier) and the gradient noise scale B_simple over training.
use plotters::style::RGBColor;

use ladder_analysis::{Inputs, Report};
use ladder_laws::Law;

use super::figure::{Chart, Mark, Series, logspace, n_colour, n_range, per_run};

/// Fig. 2 (loss against tokens), Fig. 1 (against compute, with the frontier) and B_simple.
pub(crate) fn curve_charts(inputs: &Inputs, report: &Report) -> Vec<Chart> {
    if inputs.curves.is_empty() {
        return Vec::new();
    }
    let mut charts = vec![Chart {
        file: "fig2_loss_vs_tokens",
        title: "Training loss against tokens".into(),
        x: "tokens",
        y: "train loss (nats/token, smoothed)",
        series: per_run(inputs, &|p| Some((p.tokens, p.smooth))),
        band: vec![],
        colour_bar: n_range(inputs),
    }];
    let mut series = per_run(inputs, &|p| Some((p.flops, p.smooth)));
    if let Some(fr) = &report.frontier {
        series.push(Series {
            name: format!("frontier envelope (against {})", report.frontier_compute),
            points: fr.envelope.iter().map(|p| (p.compute, p.loss)).collect(),
            mark: Mark::Points,
            color: RGBColor(0, 0, 0),
        });
        let xs = logspace(fr.envelope[0].compute, fr.envelope[fr.envelope.len() - 1].compute, 60);
        series.push(Series {
            name: format!("{} fit, α_C = {:.3}", Law::CMin, fr.l_cmin.alpha.value),
            points: xs.iter().map(|&x| (x, fr.l_cmin.predict(x))).collect(),
            mark: Mark::Dashed,
            color: RGBColor(0, 0, 0),
        });
    }
    charts.push(Chart {
        file: "fig1_loss_vs_compute",
        title: "Loss against compute, and the compute-efficient frontier".into(),
        x: "compute C = 6·N·tokens (FLOPs)",
        y: "train loss (smoothed)",
        series,
        band: vec![],
        colour_bar: n_range(inputs),
    });
    charts.push(Chart {
        file: "b_simple",
        title: "Gradient noise scale B_simple over training".into(),
        x: "tokens",
        y: "B_simple (tokens)",
        series: b_simple_segments(inputs),
        band: vec![],
        colour_bar: n_range(inputs),
    });
    charts
}

/// Each run's streamed B_simple as line segments, broken where it is undefined (the averaged
/// |G|² not yet positive): a line drawn across such a gap would show a plateau that was never
/// measured.
pub(crate) fn b_simple_segments(inputs: &Inputs) -> Vec<Series> {
    let mut out = Vec::new();
    for c in &inputs.curves {
        for segment in c.points.split(|p| p.b_simple.is_none()).filter(|s| !s.is_empty()) {
            out.push(Series {
                name: String::new(),
                points: segment.iter().filter_map(|p| p.b_simple.map(|b| (p.tokens, b))).collect(),
                mark: Mark::Line,
                color: n_colour(inputs, c.n),
            });
        }
    }
    out
}
