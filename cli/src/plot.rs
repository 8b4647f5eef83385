//! `ladder plot`: log–log charts of a sweep and its fits, each written as SVG and PNG with
//! plotters (text drawn with the embedded DejaVu Sans, so no system fonts are needed).
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use ladder_analysis::inputs::{CurvePoint, RunPoint};
use ladder_analysis::{Inputs, Report};
use ladder_laws::Law;

use crate::error::{CliError, Result};
use crate::plot_style::{fine_ticks, label, log_minor, log_position, viridis};

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Line,
    Dashed,
    Points,
    /// A lower bound: an upward triangle.
    Bound,
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
    /// The N range the series' colours map (viridis on log N), shown as a colour bar.
    colour_bar: Option<(f64, f64)>,
}

/// Plot size: the chart, then a side panel with the legend and the colour bar, off the data.
const SIZE: (u32, u32) = (1000, 620);
const CHART_WIDTH: u32 = 760;

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

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (root, side) = root.split_horizontally(CHART_WIDTH);
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
        .build_cartesian_2d(
            (xr.0..xr.1).log_scale().with_key_points(fine_ticks(xr.0, xr.1)).with_light_points(log_minor(xr.0, xr.1)),
            (yr.0..yr.1).log_scale().with_key_points(fine_ticks(yr.0, yr.1)).with_light_points(log_minor(yr.0, yr.1)),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(c.x)
        .y_desc(c.y)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
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
        match s.mark {
            Mark::Line => {
                chart.draw_series(LineSeries::new(pts, col.stroke_width(2))).map_err(e)?;
            }
            Mark::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, ShapeStyle::from(&col).stroke_width(2)))
                    .map_err(e)?;
            }
            Mark::Points => {
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled()))).map_err(e)?;
            }
            Mark::Bound => {
                chart.draw_series(pts.into_iter().map(|p| TriangleMarker::new(p, 6, col.filled()))).map_err(e)?;
            }
        }
    }
    side_panel(&side, c).map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// The legend (one entry per named series, wrapped to the panel) and the colour bar of N.
fn side_panel<DB: DrawingBackend>(
    side: &DrawingArea<DB, Shift>,
    c: &Chart,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 13).into_font();
    let mut y = 50;
    for s in c.series.iter().filter(|s| !s.name.is_empty()) {
        let col = s.color;
        match s.mark {
            Mark::Points => side.draw(&Circle::new((18, y + 7), 4, col.filled()))?,
            Mark::Bound => side.draw(&TriangleMarker::new((18, y + 7), 6, col.filled()))?,
            Mark::Line => side.draw(&PathElement::new(vec![(8, y + 7), (30, y + 7)], col.stroke_width(2)))?,
            Mark::Dashed => {
                for x in [8, 20] {
                    side.draw(&PathElement::new(vec![(x, y + 7), (x + 8, y + 7)], col.stroke_width(2)))?;
                }
            }
        }
        for line in wrap(&s.name, 26) {
            side.draw(&Text::new(line, (38, y), font.clone()))?;
            y += 17;
        }
        y += 6;
    }
    if let Some((lo, hi)) = c.colour_bar {
        colour_bar(side, lo, hi, y.max(60) + 20)?;
    }
    Ok(())
}

/// A vertical colour bar of N (small at the bottom), with round ticks, from `top` down.
fn colour_bar<DB: DrawingBackend>(
    side: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    top: i32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, w, h) = (14, 18, 220.min(SIZE.1 as i32 - top - 50));
    if h < 60 {
        return Ok(());
    }
    side.draw(&Text::new("N (colour)", (x0, top), ("sans-serif", 13).into_font()))?;
    let top = top + 22;
    for i in 0..h {
        let t = 1.0 - f64::from(i) / f64::from(h - 1);
        side.draw(&Rectangle::new([(x0, top + i), (x0 + w, top + i + 1)], viridis(t).filled()))?;
    }
    side.draw(&Rectangle::new([(x0, top), (x0 + w, top + h)], RGBColor(120, 120, 120)))?;
    let ticks = if hi > lo { fine_ticks(lo, hi) } else { vec![lo] };
    for v in ticks {
        let y = top + ((1.0 - log_position(v, lo, hi)) * f64::from(h - 1)).round() as i32;
        side.draw(&PathElement::new(vec![(x0 + w, y), (x0 + w + 5, y)], BLACK))?;
        side.draw(&Text::new(label(&v), (x0 + w + 8, y - 7), ("sans-serif", 12).into_font()))?;
    }
    Ok(())
}

/// Splits `text` into lines of at most about `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn write(dir: &Path, c: &Chart) -> Result<Vec<PathBuf>> {
    fonts();
    let svg = dir.join(format!("{}.svg", c.file));
    let png = dir.join(format!("{}.png", c.file));
    let fail = |p: &Path, m: String| CliError::Other(format!("plotting {}: {m}", p.display()));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), c).map_err(|m| fail(&svg, m))?;
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), c).map_err(|m| fail(&png, m))?;
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
    charts.extend(bcrit_chart(inputs, report));
    charts.extend(kaplan_nd(inputs, report));
    charts.extend(c_vs_cmin(inputs, report));
    let mut written = Vec::new();
    // A chart with no positive points (e.g. B_simple without gradient accumulation) is skipped.
    for c in charts.iter().filter(|c| c.series.iter().any(|s| s.points.iter().any(positive))) {
        written.extend(write(dir, c)?);
    }
    Ok(written)
}

/// The range of N over the runs: the colour bar's.
fn n_range(inputs: &Inputs) -> Option<(f64, f64)> {
    let ns = inputs.curves.iter().map(|c| c.n).filter(|n| n.is_finite() && *n > 0.0);
    let (lo, hi) = ns.fold((f64::INFINITY, 0.0f64), |(a, b), n| (a.min(n), b.max(n)));
    lo.is_finite().then_some((lo, hi))
}

/// A run's colour: its N on the colour bar.
fn n_colour(inputs: &Inputs, n: f64) -> RGBColor {
    let (lo, hi) = n_range(inputs).unwrap_or((n, n));
    viridis(log_position(n, lo, hi))
}

/// One line per run of `f` of its points, coloured by N (the colour bar names them).
fn per_run(inputs: &Inputs, f: &dyn Fn(&CurvePoint) -> Option<(f64, f64)>) -> Vec<Series> {
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
            &format!("{}: loss against non-embedding parameters", Law::N),
            "N (non-embedding parameters)",
            &report.l_n,
            fitted(&report.l_n_points, &|r| r.n),
        ),
        (
            "fig1_l_of_d",
            &format!("{}: loss against unique training tokens", Law::D),
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
        charts.push(Chart {
            file,
            title: title.into(),
            x: var,
            y: "loss (nats/token)",
            series,
            band,
            colour_bar: None,
        });
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
        colour_bar: None,
    })
}

/// Fig. 10: B_crit against loss, B_crit(L), and the streamed B_simple beside them.
fn bcrit_chart(inputs: &Inputs, report: &Report) -> Option<Chart> {
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
fn cbs_series(inputs: &Inputs, report: &Report) -> Vec<Series> {
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

/// Figs. 4 (left) and 9: early-stopped loss against D for each N with L(N, D), and the
/// overfitting view L/L(N, ∞) − 1 against N^(α_N/α_D)/D, on which all sizes fall on one curve.
fn kaplan_nd(inputs: &Inputs, report: &Report) -> Vec<Chart> {
    let Some(f) = &report.l_nd else { return vec![] };
    // The runs the fit used: those at the shared batch size.
    let runs: Vec<_> = inputs.runs.iter().filter(|r| report.base_batch.is_none() || r.b == report.base_batch).collect();
    let sizes = ladder_analysis::select::distinct_values(runs.iter().filter(|r| r.d.is_some()).filter_map(|r| r.n));
    let (d_lo, d_hi) = (f.x2_range.lo, f.x2_range.hi);
    let mut by_d = Vec::new();
    for &n in &sizes {
        let pts: Vec<(f64, f64)> =
            runs.iter().filter(|r| r.n == Some(n)).filter_map(|r| r.d.map(|d| (d, r.loss))).collect();
        let col = n_colour(inputs, n);
        by_d.push(Series { name: format!("N = {}", label(&n)), points: pts, mark: Mark::Points, color: col });
        by_d.push(Series {
            name: String::new(),
            points: logspace(d_lo / 2.0, d_hi * 2.0, 40).into_iter().map(|d| (d, f.predict(n, d))).collect(),
            mark: Mark::Dashed,
            color: col,
        });
    }
    let ratio = f.alpha_n.value / f.alpha_2.value;
    // The reducible parts: L − E against its limit at D → ∞, (N_c/N)^α_N (E = 0 in Kaplan's form).
    let e = f.e.map_or(0.0, |e| e.value);
    let l_inf = |n: f64| (f.n_c.value / n).powf(f.alpha_n.value);
    let pts: Vec<(f64, f64)> =
        runs.iter().filter_map(|r| Some((r.n?.powf(ratio) / r.d?, (r.loss - e) / l_inf(r.n?) - 1.0))).collect();
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
            title: format!("{}: early-stopped loss against D (fit R² {:.3})", Law::ND, f.r2),
            x: "D (unique tokens)",
            y: "best val loss",
            series: by_d,
            band: vec![],
            colour_bar: None,
        },
        Chart {
            file: "fig9_overfitting",
            title: if f.e.is_some() {
                format!("Overfitting: (L − E)/(L(N,∞) − E) − 1 against N^{ratio:.2}/D")
            } else {
                format!("Overfitting: L/L(N,∞) − 1 against N^{ratio:.2}/D")
            },
            x: "N^(α_N/α_D) / D",
            y: if f.e.is_some() { "(L − E) / (L(N, ∞) − E) − 1" } else { "L / L(N, ∞) − 1" },
            series: vec![
                Series { name: "runs".into(), points: pts, mark: Mark::Points, color: color(0) },
                Series {
                    name: format!("{} fit", Law::ND),
                    points: curve,
                    mark: Mark::Dashed,
                    color: RGBColor(0, 0, 0),
                },
            ],
            band: vec![],
            colour_bar: None,
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
        title: format!("Frontier against C and against C_min = C/(1 + B/{})", Law::BCritL),
        x: "compute (FLOPs)",
        y: "loss (smoothed train)",
        series: vec![
            Series { name: format!("{}: as trained", Law::C), points: c, mark: Mark::Dashed, color: color(0) },
            Series { name: format!("{}: batch-adjusted", Law::CMin), points: cmin, mark: Mark::Line, color: color(3) },
        ],
        band: vec![],
        colour_bar: None,
    }]
}

/// Each run's streamed B_simple as line segments, broken where it is undefined (the averaged
/// |G|² not yet positive): a line drawn across such a gap would show a plateau that was never
/// measured.
fn b_simple_segments(inputs: &Inputs) -> Vec<Series> {
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
