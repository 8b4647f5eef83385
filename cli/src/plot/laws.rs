//! The figures of the fitted laws: L(N) and L(D) with their bands, N_opt(C), Kaplan's L(N, D)
//! against D per N, and L against C_min.
use plotters::style::RGBColor;

use ladder_analysis::inputs::RunPoint;
use ladder_analysis::{Inputs, Report};
use ladder_laws::Law;

use super::figure::{Chart, Mark, Series, color, logspace, n_colour};
use super::style::label;

/// L(N) and L(D): the points each was fitted to (every run's when it was not), the law and its
/// bootstrap band.
pub(crate) fn law_charts(inputs: &Inputs, report: &Report) -> Vec<Chart> {
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
pub(crate) fn n_opt_chart(report: &Report) -> Option<Chart> {
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

/// Figs. 4 (left) and 9: early-stopped loss against D for each N with L(N, D), and the
/// overfitting view L/L(N, ∞) − 1 against N^(α_N/α_D)/D, on which all sizes fall on one curve.
pub(crate) fn kaplan_nd(inputs: &Inputs, report: &Report) -> Vec<Chart> {
    let Some(f) = &report.l_nd else { return vec![] };
    // The runs the fit used: those at the shared batch size.
    let runs: Vec<_> = inputs.runs.iter().filter(|r| report.at_base_batch(r)).collect();
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
pub(crate) fn c_vs_cmin(inputs: &Inputs, report: &Report) -> Vec<Chart> {
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
