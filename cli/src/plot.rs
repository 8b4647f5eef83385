//! `ladder plot`: log–log charts of a sweep and its fits, each written as SVG and PNG with
//! plotters (text drawn with the embedded DejaVu Sans, so no system fonts are needed).
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use ladder_analysis::inputs::{CurvePoint, RunPoint};
use ladder_analysis::{Inputs, Report};

use crate::error::{CliError, Result};

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Line,
    Dashed,
    Points,
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    mark: Mark,
    color: RGBColor,
}

struct Chart {
    file: &'static str,
    title: String,
    x: &'static str,
    y: &'static str,
    series: Vec<Series>,
    /// (x, lo, hi): a shaded band.
    band: Vec<(f64, f64, f64)>,
}

const PALETTE: [RGBColor; 10] = [
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

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

fn positive(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && p.0 > 0.0 && p.1 > 0.0
}

fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        vals.filter(|v| v.is_finite() && *v > 0.0).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    (lo.is_finite() && hi > 0.0).then(|| if hi > lo { (lo / 1.15, hi * 1.15) } else { (lo / 2.0, hi * 2.0) })
}

/// Ticks at powers of 10, or of a smaller base when the axis spans under two decades (plotters
/// labels powers of the base only).
fn tick_base(r: (f64, f64)) -> f64 {
    let ratio = r.1 / r.0;
    if ratio >= 100.0 { 10.0 } else { ratio.powf(1.0 / 6.0) }
}

/// Tick labels: powers of ten as 1e4, others with four significant digits, no trailing zeros.
fn sci(v: &f64) -> String {
    let v = *v;
    if !(1e-2..1e4).contains(&v) {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let decimals = (3 - v.log10().floor() as i32).clamp(0, 5) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let all = || c.series.iter().flat_map(|s| s.points.iter().copied().filter(positive));
    let band_pts = || c.band.iter().flat_map(|b| [(b.0, b.1), (b.0, b.2)]).filter(positive);
    let (Some(xr), Some(yr)) =
        (range(all().chain(band_pts()).map(|p| p.0)), range(all().chain(band_pts()).map(|p| p.1)))
    else {
        return Err("nothing to plot".into());
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((xr.0..xr.1).log_scale().base(tick_base(xr)), (yr.0..yr.1).log_scale().base(tick_base(yr)))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(c.x)
        .y_desc(c.y)
        .x_label_formatter(&sci)
        .y_label_formatter(&sci)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    if c.band.len() >= 2 {
        let band: Vec<(f64, f64, f64)> =
            c.band.iter().copied().filter(|b| b.0 > 0.0 && b.1 > 0.0 && b.2 > 0.0).collect();
        let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
        poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
        chart.draw_series(std::iter::once(Polygon::new(poly, RGBColor(31, 119, 180).mix(0.18).filled()))).map_err(e)?;
    }
    for s in &c.series {
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(positive).collect();
        let col = s.color;
        let anno = match s.mark {
            Mark::Line => chart.draw_series(LineSeries::new(pts, col.stroke_width(2))).map_err(e)?,
            Mark::Dashed => chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, ShapeStyle::from(&BLACK).stroke_width(2)))
                .map_err(e)?,
            Mark::Points => chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled()))).map_err(e)?,
        };
        if !s.name.is_empty() {
            let anno = anno.label(&s.name);
            match s.mark {
                Mark::Points => anno.legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled())),
                Mark::Dashed => {
                    anno.legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)))
                }
                Mark::Line => {
                    anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)))
                }
            };
        }
    }
    if c.series.iter().any(|s| !s.name.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

fn write(dir: &Path, c: &Chart) -> Result<Vec<PathBuf>> {
    fonts();
    let svg = dir.join(format!("{}.svg", c.file));
    let png = dir.join(format!("{}.png", c.file));
    let fail = |p: &Path, m: String| CliError::Other(format!("plotting {}: {m}", p.display()));
    draw(SVGBackend::new(&svg, (900, 620)).into_drawing_area(), c).map_err(|m| fail(&svg, m))?;
    draw(BitMapBackend::new(&png, (900, 620)).into_drawing_area(), c).map_err(|m| fail(&png, m))?;
    Ok(vec![svg, png])
}

fn logspace(lo: f64, hi: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (k - 1) as f64).exp()).collect()
}

/// Writes every chart the data supports into `dir`; returns the files written.
pub fn plot_all(inputs: &Inputs, report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    let mut charts = curve_charts(inputs, report);
    charts.extend(law_charts(inputs, report));
    charts.extend(n_opt_chart(report));
    charts.extend(bcrit_chart(report));
    charts.extend(kaplan_nd(inputs, report));
    charts.extend(c_vs_cmin(inputs, report));
    let mut written = Vec::new();
    // A chart with no positive points (e.g. B_simple without gradient accumulation) is skipped.
    for c in charts.iter().filter(|c| c.series.iter().any(|s| s.points.iter().any(positive))) {
        written.extend(write(dir, c)?);
    }
    Ok(written)
}

/// One line per run of `f` of its points.
fn per_run(inputs: &Inputs, f: &dyn Fn(&CurvePoint) -> Option<(f64, f64)>) -> Vec<Series> {
    inputs
        .curves
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            name: format!("{} N={:.3e}", c.label, c.n),
            points: c.points.iter().filter_map(f).collect(),
            mark: Mark::Line,
            color: color(i),
        })
        .collect()
}

/// Fig. 2 (loss against tokens), Fig. 1 (against compute, with the frontier) and B_simple.
fn curve_charts(inputs: &Inputs, report: &Report) -> Vec<Chart> {
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
            name: format!("L(C_min) fit, α_C = {:.3}", fr.l_cmin.alpha.value),
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
    });
    charts.push(Chart {
        file: "b_simple",
        title: "Gradient noise scale B_simple over training".into(),
        x: "step",
        y: "B_simple (tokens)",
        series: b_simple_segments(inputs),
        band: vec![],
    });
    charts
}

/// L(N) and L(D): the points each was fitted to (every run's when it was not), the law and its
/// bootstrap band.
fn law_charts(inputs: &Inputs, report: &Report) -> Vec<Chart> {
    let fitted = |used: &[(f64, f64)], x: &dyn Fn(&RunPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        if used.is_empty() {
            inputs.runs.iter().filter_map(|r| x(r).map(|v| (v, r.loss))).collect()
        } else {
            used.to_vec()
        }
    };
    let mut charts = Vec::new();
    for (file, title, var, law, pts) in [
        (
            "fig1_l_of_n",
            "L(N): loss against non-embedding parameters",
            "N (non-embedding parameters)",
            &report.l_n,
            fitted(&report.l_n_points, &|r| r.n),
        ),
        (
            "fig1_l_of_d",
            "L(D): loss against unique training tokens",
            "D (tokens)",
            &report.l_d,
            fitted(&report.l_d_points, &|r| r.d),
        ),
    ] {
        if pts.is_empty() {
            continue;
        }
        let mut series = vec![Series {
            name: "runs fitted (best val loss)".into(),
            points: pts.clone(),
            mark: Mark::Points,
            color: color(0),
        }];
        let mut band = vec![];
        if let Some(f) = law {
            let (lo, hi) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
            let xs = logspace(lo / 2.0, hi * 2.0, 60);
            let form = match f.e {
                Some(e) => {
                    format!("fit: {:.3} + ({:.2e}/x)^{:.3}, R² {:.3}", e.value, f.x_c.value, f.alpha.value, f.r2)
                }
                None => format!("fit: ({:.2e}/x)^{:.3}, R² {:.3}", f.x_c.value, f.alpha.value, f.r2),
            };
            series.push(Series {
                name: form,
                points: xs.iter().map(|&x| (x, f.predict(x))).collect(),
                mark: Mark::Dashed,
                color: RGBColor(0, 0, 0),
            });
            band = xs
                .iter()
                .map(|&x| {
                    let (l, h) = f.band(x);
                    (x, l, h)
                })
                .filter(|b| b.1.is_finite() && b.2.is_finite())
                .collect();
        }
        charts.push(Chart { file, title: title.into(), x: var, y: "loss (nats/token)", series, band });
    }
    charts
}

/// Fig. 3: the sizes on the frontier's envelope, N_opt(C), and the IsoFLOP vertices.
fn n_opt_chart(report: &Report) -> Option<Chart> {
    let fr = report.frontier.as_ref()?;
    let pts: Vec<(f64, f64)> = fr.envelope.iter().map(|p| (p.compute, p.n_opt)).collect();
    let xs = logspace(pts[0].0, pts[pts.len() - 1].0, 60);
    let mut series =
        vec![Series { name: "size on the envelope".into(), points: pts, mark: Mark::Points, color: color(1) }];
    series.push(Series {
        name: format!("N_opt = {:.2e}·C^{:.3}", fr.n_opt_coeff.value, fr.n_opt_exponent.value),
        points: xs.iter().map(|&x| (x, fr.n_opt_coeff.value * x.powf(fr.n_opt_exponent.value))).collect(),
        mark: Mark::Dashed,
        color: RGBColor(0, 0, 0),
    });
    for (i, iso) in fr.isoflops.iter().enumerate() {
        if let Some(n) = iso.n_opt {
            series.push(Series {
                name: format!("IsoFLOP vertex at C={:.1e}", iso.compute),
                points: vec![(iso.compute, n)],
                mark: Mark::Points,
                color: color(i + 3),
            });
        }
    }
    Some(Chart {
        file: "fig3_n_opt",
        title: "Compute-optimal model size".into(),
        x: "compute (FLOPs)",
        y: "N",
        series,
        band: vec![],
    })
}

/// Fig. 10: B_crit against loss, B_crit(L), and the streamed B_simple beside them.
fn bcrit_chart(report: &Report) -> Option<Chart> {
    let mut series = Vec::new();
    if !report.bcrit_at.is_empty() {
        series.push(Series {
            name: "B_crit from the batch sweep".into(),
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
            name: format!("B_crit(L) = {:.2e}/L^(1/{:.3})", law.b_star.value, law.alpha_b.value),
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
    if !report.b_simple.is_empty() {
        series.push(Series {
            name: "B_simple (streamed, end of run)".into(),
            points: report.b_simple.iter().map(|b| (b.loss, b.b_simple)).collect(),
            mark: Mark::Points,
            color: color(0),
        });
    }
    (!series.is_empty()).then(|| Chart {
        file: "fig10_b_crit",
        title: "Critical batch size against loss".into(),
        x: "loss",
        y: "batch (tokens)",
        series,
        band: vec![],
    })
}

/// Figs. 4 (left) and 9: early-stopped loss against D for each N with L(N, D), and the
/// overfitting view L/L(N, ∞) − 1 against N^(α_N/α_D)/D, on which all sizes fall on one curve.
fn kaplan_nd(inputs: &Inputs, report: &Report) -> Vec<Chart> {
    let Some(f) = &report.l_nd else { return vec![] };
    // The runs the fit used: those at the shared batch size.
    let runs: Vec<_> = inputs.runs.iter().filter(|r| report.base_batch.is_none() || r.b == report.base_batch).collect();
    let sizes = ladder_analysis::select::distinct_values(runs.iter().filter(|r| r.d.is_some()).filter_map(|r| r.n));
    let (d_lo, d_hi) = (f.x2_range.lo, f.x2_range.hi);
    let mut by_d = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let pts: Vec<(f64, f64)> =
            runs.iter().filter(|r| r.n == Some(n)).filter_map(|r| r.d.map(|d| (d, r.loss))).collect();
        by_d.push(Series { name: format!("N = {n:.3e}"), points: pts, mark: Mark::Points, color: color(i) });
        by_d.push(Series {
            name: String::new(),
            points: logspace(d_lo / 2.0, d_hi * 2.0, 40).into_iter().map(|d| (d, f.predict(n, d))).collect(),
            mark: Mark::Dashed,
            color: color(i),
        });
    }
    let ratio = f.alpha_n.value / f.alpha_2.value;
    let l_inf = |n: f64| (f.n_c.value / n).powf(f.alpha_n.value);
    let pts: Vec<(f64, f64)> =
        runs.iter().filter_map(|r| Some((r.n?.powf(ratio) / r.d?, r.loss / l_inf(r.n?) - 1.0))).collect();
    let (x_lo, x_hi) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
    // Eq. 1.5 in these coordinates: L/L(N,∞) − 1 = (1 + x·D_c/N_c^(α_N/α_D))^α_D − 1.
    let scale = f.c_2.value / f.n_c.value.powf(ratio);
    let curve: Vec<(f64, f64)> = logspace(x_lo / 2.0, x_hi * 2.0, 60)
        .into_iter()
        .map(|x| (x, (1.0 + x * scale).powf(f.alpha_2.value) - 1.0))
        .collect();
    vec![
        Chart {
            file: "fig4_l_of_n_d",
            title: format!("L(N, D): early-stopped loss against D (fit R² {:.3})", f.r2),
            x: "D (unique tokens)",
            y: "best val loss",
            series: by_d,
            band: vec![],
        },
        Chart {
            file: "fig9_overfitting",
            title: format!("Overfitting: L/L(N,∞) − 1 against N^{ratio:.2}/D"),
            x: "N^(α_N/α_D) / D",
            y: "L / L(N, ∞) − 1",
            series: vec![
                Series { name: "runs".into(), points: pts, mark: Mark::Points, color: color(0) },
                Series { name: "L(N, D) fit".into(), points: curve, mark: Mark::Dashed, color: RGBColor(0, 0, 0) },
            ],
            band: vec![],
        },
    ]
}

/// Fig. 13: the frontier against C, and against C_min = C/(1 + B/B_crit(L)) (eq. 5.5): the
/// compute each point would have needed at a batch size far below B_crit.
fn c_vs_cmin(inputs: &Inputs, report: &Report) -> Vec<Chart> {
    let Some(law) = &report.bcrit_law else { return vec![] };
    let curves = |adjust: bool| -> Vec<Vec<(f64, f64)>> {
        inputs
            .curves
            .iter()
            .filter(|c| !c.data_limited)
            .map(|c| {
                c.points
                    .iter()
                    .map(|p| {
                        let x = if adjust { p.flops / (1.0 + c.b / law.predict_within(p.smooth)) } else { p.flops };
                        (x, p.smooth)
                    })
                    .collect()
            })
            .collect()
    };
    let envelope = |cs: &[Vec<(f64, f64)>]| -> Vec<(f64, f64)> {
        let lo = cs.iter().filter_map(|c| c.first().map(|p| p.0)).fold(f64::INFINITY, f64::min);
        let hi = cs.iter().filter_map(|c| c.last().map(|p| p.0)).fold(0.0, f64::max);
        if !(lo.is_finite() && hi > lo) {
            return vec![];
        }
        logspace(lo, hi, 40)
            .into_iter()
            .filter_map(|x| {
                let best = cs.iter().filter_map(|c| ladder_laws::loss_at(c, x)).fold(f64::INFINITY, f64::min);
                best.is_finite().then_some((x, best))
            })
            .collect()
    };
    let (c, cmin) = (envelope(&curves(false)), envelope(&curves(true)));
    vec![Chart {
        file: "fig13_c_vs_cmin",
        title: "Frontier against C and against C_min = C/(1 + B/B_crit(L))".into(),
        x: "compute (FLOPs)",
        y: "loss (smoothed train)",
        series: vec![
            Series { name: "L(C): as trained".into(), points: c, mark: Mark::Dashed, color: color(0) },
            Series { name: "L(C_min): batch-adjusted".into(), points: cmin, mark: Mark::Line, color: color(3) },
        ],
        band: vec![],
    }]
}

/// Each run's streamed B_simple as line segments, broken where it is undefined (the averaged
/// |G|² not yet positive): a line drawn across such a gap would show a plateau that was never
/// measured.
fn b_simple_segments(inputs: &Inputs) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, c) in inputs.curves.iter().enumerate() {
        let mut first = true;
        for segment in c.points.split(|p| p.b_simple.is_none()).filter(|s| !s.is_empty()) {
            out.push(Series {
                name: if first { format!("{} N={:.3e}", c.label, c.n) } else { String::new() },
                points: segment.iter().filter_map(|p| p.b_simple.map(|b| (p.step, b))).collect(),
                mark: Mark::Line,
                color: color(i),
            });
            first = false;
        }
    }
    out
}
