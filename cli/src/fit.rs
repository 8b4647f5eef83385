//! `ladder fit`: every law the data supports, with bootstrap intervals, which runs fed it and
//! which were left out and why; laws the data cannot support are listed with the reason.
use ladder_laws::{
    BcritAtLoss, BcritLaw, Bootstrap, ChinchillaFit, ChinchillaOptions, ComputeCurve, Contradiction, Estimate,
    Frontier, HoldoutError, PowerLaw, Run, TwoVarLaw, chinchilla_bootstrap, contradiction, fit_bcrit_at, fit_bcrit_law,
    fit_chinchilla, fit_frontier, fit_l_nd, fit_l_ns, fit_power_law, s_min, steps_to_loss,
};
use serde::Serialize;

use crate::args::FitArgs;
use crate::error::{CliError, Result};
use crate::inputs::{Excluded, Inputs, RunPoint, group_by};

#[derive(Debug, Clone, Serialize)]
pub struct ChinchillaReport {
    pub fit: ChinchillaFit,
    /// E, A, B, α, β.
    pub intervals: [Estimate; 5],
    pub excluded_highest_loss: usize,
    /// Bootstrap refits, for prediction bands.
    #[serde(skip)]
    pub draws: Vec<ChinchillaFit>,
}

/// The streamed B_simple beside the batch sweep's B_crit at one target loss.
#[derive(Debug, Clone, Serialize)]
pub struct BcritVsSimple {
    pub group: String,
    pub target_loss: f64,
    pub b_crit: f64,
    /// Median over the group's runs of the streamed B_simple where each first reached the loss.
    pub b_simple: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub law: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BSimple {
    pub job: Option<u64>,
    pub loss: f64,
    /// Tokens.
    pub b_simple: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub runs: usize,
    pub used_jobs: Vec<u64>,
    pub excluded: Vec<Excluded>,
    pub l_n: Option<PowerLaw>,
    /// The (N, loss) points L(N) was fitted to, and L(D)'s (D, loss).
    pub l_n_points: Vec<(f64, f64)>,
    pub l_d_points: Vec<(f64, f64)>,
    pub l_d: Option<PowerLaw>,
    pub l_c: Option<PowerLaw>,
    pub l_nd: Option<TwoVarLaw>,
    pub l_ns: Option<TwoVarLaw>,
    /// Where L(N,S)'s B_crit came from.
    pub l_ns_bcrit: Option<&'static str>,
    /// The compute axis of the frontier.
    pub frontier_compute: &'static str,
    pub frontier: Option<Frontier>,
    pub bcrit_at: Vec<BcritAtLoss>,
    pub bcrit_law: Option<BcritLaw>,
    pub b_simple: Vec<BSimple>,
    pub bcrit_vs_simple: Vec<BcritVsSimple>,
    pub chinchilla: Option<ChinchillaReport>,
    /// Kaplan §6.3: where L(C_min) meets L(D) along the frontier's data use.
    pub contradiction: Option<Contradiction>,
    /// The batch size of the runs behind L(N) and L(D) (the one most sizes share).
    pub base_batch: Option<f64>,
    /// `--holdout K`: each law refitted without the K largest sizes, scored on them.
    pub holdout: Vec<HoldoutError>,
    pub skipped: Vec<Skipped>,
}

/// The distinct values, ascending.
pub(crate) fn distinct_values(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut xs: Vec<f64> = v.collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

fn distinct(v: impl Iterator<Item = f64>) -> usize {
    distinct_values(v).len()
}

/// Best (lowest) loss per distinct x among `runs`.
fn best_per(runs: &[&RunPoint], x: impl Fn(&RunPoint) -> Option<f64>) -> (Vec<f64>, Vec<f64>) {
    let mut pts: Vec<(f64, f64)> = runs.iter().filter_map(|r| x(r).map(|v| (v, r.loss))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts.dedup_by(|a, b| a.0 == b.0);
    pts.into_iter().unzip()
}

struct Ctx<'a> {
    boot: Bootstrap,
    floor: bool,
    skipped: &'a mut Vec<Skipped>,
}

impl Ctx<'_> {
    fn skip(&mut self, law: &'static str, reason: impl Into<String>) {
        self.skipped.push(Skipped { law, reason: reason.into() });
    }

    /// A one-variable law; with an irreducible term when asked.
    fn power(&mut self, law: &'static str, x: &[f64], y: &[f64]) -> Option<PowerLaw> {
        match fit_power_law(law, x, y, self.floor, &self.boot) {
            Ok(f) => Some(f),
            Err(e) => {
                self.skip(law, e.to_string());
                None
            }
        }
    }
}

pub fn fit_all(inputs: &Inputs, args: &FitArgs) -> Result<Report> {
    let mut skipped = Vec::new();
    let boot = Bootstrap { resamples: args.bootstrap.max(20), ..Bootstrap::default() };
    let mut ctx = Ctx { boot, floor: args.floor, skipped: &mut skipped };
    let runs = &inputs.runs;

    // L(N) and L(D) compare runs that differ in one variable: at the batch size most sizes share.
    let base_batch = base_batch(runs);
    let at_base: Vec<&RunPoint> = runs.iter().filter(|r| base_batch.is_none() || r.b == base_batch).collect();

    // L(N): at the largest D, the best loss per N.
    let max_d = at_base.iter().filter(|r| r.n.is_some()).map(|r| r.d_limit).fold(0.0, f64::max);
    let at_max_d: Vec<&RunPoint> = at_base.iter().copied().filter(|r| r.n.is_some() && r.d_limit == max_d).collect();
    let (n, l) = best_per(&at_max_d, |r| r.n);
    let l_n = if n.len() >= 3 { ctx.power("L(N)", &n, &l) } else { ctx_skip(&mut ctx, "L(N)", "N", n.len()) };
    let l_n_points: Vec<(f64, f64)> = n.into_iter().zip(l).collect();

    // L(D): at the largest N that has a data axis (≥ 3 distinct D), the best loss per D.
    let d_count = |n: f64| distinct(at_base.iter().filter(|r| r.n == Some(n)).filter_map(|r| r.d));
    let with_axis = at_base.iter().filter_map(|r| r.n).filter(|&n| d_count(n) >= 3).reduce(f64::max);
    let max_n = with_axis.or_else(|| runs.iter().filter_map(|r| r.n).reduce(f64::max));
    let at_max_n: Vec<&RunPoint> =
        at_base.iter().copied().filter(|r| r.d.is_some() && (r.n.is_none() || r.n == max_n)).collect();
    let (d, l) = best_per(&at_max_n, |r| r.d);
    let l_d = if d.len() >= 3 { ctx.power("L(D)", &d, &l) } else { ctx_skip(&mut ctx, "L(D)", "D", d.len()) };
    let l_d_points: Vec<(f64, f64)> = d.into_iter().zip(l).collect();

    // L(C) from CSV points with C (a sweep's compute law is the frontier below).
    let with_c: Vec<&RunPoint> = runs.iter().filter(|r| r.c.is_some() && r.job.is_none()).collect();
    let l_c = if with_c.len() >= 3 {
        let (c, l) = best_per(&with_c, |r| r.c);
        ctx.power("L(C)", &c, &l)
    } else {
        None
    };

    // L(N, D) (eq. 1.5) and Chinchilla, like L(N) and L(D), at the shared batch size: runs that differ only
    // in B have one (N, D) and different losses, which neither law describes.
    let nd: Vec<&RunPoint> = at_base.iter().copied().filter(|r| r.n.is_some() && r.d.is_some()).collect();
    let l_nd = if nd.len() >= 6
        && distinct(nd.iter().filter_map(|r| r.d)) >= 2
        && distinct(nd.iter().filter_map(|r| r.n)) >= 2
    {
        let (nn, dd, ll) = unzip3(nd.iter().map(|r| (r.n.unwrap_or(0.0), r.d.unwrap_or(0.0), r.loss)));
        fit_l_nd(&nn, &dd, &ll, &ctx.boot).map_err(|e| ctx.skip("L(N,D)", e.to_string())).ok()
    } else {
        ctx.skip("L(N,D)", format!("{} runs with N and D; needs ≥ 6 with ≥ 2 distinct N and ≥ 2 distinct D", nd.len()));
        None
    };

    // B_crit: per batch-size group, at target losses all its runs reach.
    let (bcrit_at, bcrit_law, bcrit_vs_simple) = bcrit(inputs, &mut ctx);

    // L(N, S_min), eq. 1.6.
    let (l_ns, l_ns_bcrit) = l_ns(inputs, bcrit_law.as_ref(), base_batch, &mut ctx);

    // Compute frontier over the curves of runs with all the data, each without its early
    // transient (the points before its smoothed loss first fell below the geometric mean of its
    // first and last values), against C_min = C/(1 + B/B_crit(L)) (Kaplan eq. 5.5) when B_crit(L)
    // is fitted: the compute each point would have needed at a batch far below B_crit.
    let c_min = |c: &crate::inputs::RunCurve, p: &crate::inputs::CurvePoint| match &bcrit_law {
        Some(law) => p.flops / (1.0 + c.b / law.predict_within(p.smooth)),
        None => p.flops,
    };
    let curves: Vec<ComputeCurve> = inputs
        .curves
        .iter()
        .filter(|c| !c.data_limited)
        .filter_map(|c| {
            let (first, last) = (c.points.first()?.smooth, c.points.last()?.smooth);
            let mid = (first * last).sqrt();
            let start = c.points.iter().position(|p| p.smooth <= mid)?;
            Some(ComputeCurve { n: c.n, points: c.points[start..].iter().map(|p| (c_min(c, p), p.smooth)).collect() })
        })
        .collect();
    let frontier_compute = if bcrit_law.is_some() { "C_min = C/(1 + B/B_crit(L))" } else { "C = 6·N·tokens" };
    let frontier = if distinct(curves.iter().map(|c| c.n)) >= 2 {
        fit_frontier(&curves, 30, ctx.floor, &ctx.boot).map_err(|e| ctx.skip("frontier", e.to_string())).ok()
    } else {
        if !inputs.curves.is_empty() {
            ctx.skip("frontier", "needs curves of ≥ 2 model sizes");
        }
        None
    };

    // B_simple at the end of each run, beside B_crit.
    let b_simple = inputs
        .curves
        .iter()
        .filter_map(|c| {
            let tail = &c.points[c.points.len() * 9 / 10..];
            let mut bs: Vec<f64> =
                tail.iter().filter_map(|p| p.b_simple).filter(|v| v.is_finite() && *v > 0.0).collect();
            bs.sort_by(f64::total_cmp);
            let loss = tail.iter().map(|p| p.smooth).fold(f64::INFINITY, f64::min);
            (!bs.is_empty()).then(|| BSimple { job: Some(c.job), loss, b_simple: bs[bs.len() / 2] })
        })
        .collect();

    // Chinchilla on (N, D, loss), D the unique tokens seen: a run that repeats a small data set
    // gets no credit for its repeats.
    let mut ch: Vec<Run> =
        at_base.iter().filter_map(|r| Some(Run { n: r.n?, d: r.d.or(r.tokens)?, loss: r.loss })).collect();
    ch.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    ch.truncate(ch.len().saturating_sub(args.exclude_top));
    let chinchilla = if ch.len() >= 6 && distinct(ch.iter().map(|r| r.d)) >= 2 && distinct(ch.iter().map(|r| r.n)) >= 2
    {
        match fit_chinchilla(&ch, &ChinchillaOptions::default()) {
            Ok(fit) => {
                let (intervals, draws) =
                    chinchilla_bootstrap(&ch, &fit, &Bootstrap { resamples: ctx.boot.resamples.min(100), ..ctx.boot });
                Some(ChinchillaReport { fit, intervals, excluded_highest_loss: args.exclude_top, draws })
            }
            Err(e) => {
                ctx.skip("Chinchilla", e.to_string());
                None
            }
        }
    } else {
        ctx.skip("Chinchilla", format!("{} runs; needs ≥ 6 with ≥ 2 distinct N and ≥ 2 distinct D", ch.len()));
        None
    };

    let contradiction = match (&frontier, &l_d) {
        (Some(fr), Some(ld)) => contradiction(&fr.l_cmin, ld, fr.n_opt_coeff.value, fr.n_opt_exponent.value),
        _ => None,
    };
    let mut report = Report {
        source: inputs.source.clone(),
        runs: runs.len(),
        used_jobs: runs.iter().filter_map(|r| r.job).collect(),
        excluded: inputs.excluded.clone(),
        l_n,
        l_n_points,
        l_d_points,
        l_d,
        l_c,
        l_nd,
        l_ns,
        l_ns_bcrit,
        frontier_compute,
        frontier,
        bcrit_at,
        bcrit_law,
        b_simple,
        bcrit_vs_simple,
        chinchilla,
        contradiction,
        base_batch,
        holdout: Vec::new(),
        skipped,
    };
    if let Some(k) = args.holdout {
        report.holdout = crate::holdout::holdout(inputs, &report, args, k)?;
    }
    required(&report, inputs, &args.law)?;
    let any = report.l_n.is_some()
        || report.l_d.is_some()
        || report.l_c.is_some()
        || report.l_nd.is_some()
        || report.l_ns.is_some()
        || report.frontier.is_some()
        || !report.bcrit_at.is_empty()
        || report.chinchilla.is_some();
    if !any {
        let why: Vec<String> = report.skipped.iter().map(|s| format!("{}: {}", s.law, s.reason)).collect();
        let left: Vec<String> = report.excluded.iter().map(|e| format!("job {}: {}", e.job, e.reason)).collect();
        let mut msg = format!("{}: too few points for any fit ({} usable runs)", report.source, runs.len());
        if !why.is_empty() {
            msg.push_str(&format!("; {}", why.join("; ")));
        }
        if !left.is_empty() {
            msg.push_str(&format!("; left out: {}", left.join(", ")));
        }
        return Err(CliError::NoFit(msg));
    }
    Ok(report)
}

fn ctx_skip<T>(ctx: &mut Ctx, law: &'static str, var: &str, got: usize) -> Option<T> {
    ctx.skip(law, format!("{got} distinct {var}; needs ≥ 3"));
    None
}

fn unzip3(it: impl Iterator<Item = (f64, f64, f64)>) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
    for (x, y, z) in it {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

/// Target losses per batch-size group, log-spaced between the loss every run reached and the
/// loss every run had passed a tenth of the way through.
const BCRIT_TARGETS: usize = 7;

/// B_crit at several target losses per group of runs that differ only in B, then B_crit(L).
fn bcrit(inputs: &Inputs, ctx: &mut Ctx) -> (Vec<BcritAtLoss>, Option<BcritLaw>, Vec<BcritVsSimple>) {
    let mut at = Vec::new();
    let mut vs = Vec::new();
    if inputs.curves.is_empty() {
        // CSV: rows with B, S and loss; one fit per distinct loss (the target).
        let rows: Vec<&RunPoint> = inputs.runs.iter().filter(|r| r.b.is_some() && r.s.is_some()).collect();
        for (key, g) in group_by(&rows, |r| r.loss.to_bits()) {
            let (b, s): (Vec<f64>, Vec<f64>) = g.iter().map(|r| (r.b.unwrap_or(0.0), r.s.unwrap_or(0.0))).unzip();
            match fit_bcrit_at(f64::from_bits(key), &b, &s, &ctx.boot) {
                Ok(f) => at.push(f),
                Err(e) => ctx.skip("B_crit", e.to_string()),
            }
        }
    } else {
        let runs: Vec<&RunPoint> = inputs.runs.iter().collect();
        for (group, members) in group_by(&runs, |r| r.group.clone()) {
            let curves: Vec<_> =
                inputs.curves.iter().filter(|c| members.iter().any(|m| m.job == Some(c.job))).collect();
            if distinct(curves.iter().map(|c| c.b)) < 3 {
                continue;
            }
            // Targets between the loss every run passed early on and the best every run reached.
            let floor = curves
                .iter()
                .map(|c| c.points.iter().map(|p| p.smooth).fold(f64::INFINITY, f64::min))
                .fold(0.0, f64::max);
            let ceil = curves
                .iter()
                .map(|c| c.points.get(c.points.len() / 10).map_or(f64::INFINITY, |p| p.smooth))
                .fold(f64::INFINITY, f64::min);
            let (lo, hi) = (floor * 1.01, ceil);
            if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
                ctx.skip("B_crit", format!("{group}: the runs share no range of loss"));
                continue;
            }
            for k in 0..BCRIT_TARGETS {
                let target = (lo.ln() + (hi.ln() - lo.ln()) * k as f64 / (BCRIT_TARGETS - 1) as f64).exp();
                let (b, s): (Vec<f64>, Vec<f64>) = curves
                    .iter()
                    .filter_map(|c| {
                        let pts: Vec<(f64, f64)> = c.points.iter().map(|p| (p.step, p.smooth)).collect();
                        steps_to_loss(&pts, target).map(|s| (c.b, s))
                    })
                    .unzip();
                match fit_bcrit_at(target, &b, &s, &ctx.boot) {
                    Ok(f) => {
                        let mut streamed: Vec<f64> = curves
                            .iter()
                            .filter_map(|c| c.points.iter().find(|p| p.smooth <= target).and_then(|p| p.b_simple))
                            .filter(|v| v.is_finite() && *v > 0.0)
                            .collect();
                        streamed.sort_by(f64::total_cmp);
                        if let Some(&mid) = streamed.get(streamed.len() / 2) {
                            let b_crit = f.b_crit.value;
                            vs.push(BcritVsSimple {
                                group: group.clone(),
                                target_loss: target,
                                b_crit,
                                b_simple: mid,
                                ratio: mid / b_crit,
                            });
                        }
                        at.push(f);
                    }
                    Err(e) => ctx.skip("B_crit", format!("{group}: {e}")),
                }
            }
        }
        if at.is_empty() {
            ctx.skip("B_crit", "no group of runs differing only in batch size has ≥ 3 distinct B");
        }
    }
    let law = if at.len() >= 3 {
        let (l, b): (Vec<f64>, Vec<f64>) = at.iter().map(|a| (a.target_loss, a.b_crit.value)).unzip();
        fit_bcrit_law(&l, &b, &ctx.boot).map_err(|e| ctx.skip("B_crit(L)", e.to_string())).ok()
    } else {
        if !at.is_empty() {
            ctx.skip("B_crit(L)", format!("{} B_crit estimates; needs ≥ 3", at.len()));
        }
        None
    };
    (at, law, vs)
}

/// The batch size shared by the most distinct model sizes (ties: the smallest B); None when no
/// run has one.
fn base_batch(runs: &[RunPoint]) -> Option<f64> {
    let bs = distinct_values(runs.iter().filter_map(|r| r.b));
    let sizes = |x: f64| distinct(runs.iter().filter(|r| r.b == Some(x)).filter_map(|r| r.n));
    bs.into_iter().max_by(|a, b| sizes(*a).cmp(&sizes(*b)).then(b.total_cmp(a)))
}

/// `--law`: every law named must have been fitted.
fn required(r: &Report, inputs: &Inputs, laws: &[String]) -> Result<()> {
    for name in laws {
        let (fitted, label) = match name.trim().to_ascii_lowercase().as_str() {
            "n" => (r.l_n.is_some(), "L(N)"),
            "d" => (r.l_d.is_some(), "L(D)"),
            "c" => (r.l_c.is_some(), "L(C)"),
            "nd" => (r.l_nd.is_some(), "L(N,D)"),
            "ns" => (r.l_ns.is_some(), "L(N,S)"),
            "frontier" => (r.frontier.is_some(), "frontier"),
            "chinchilla" => (r.chinchilla.is_some(), "Chinchilla"),
            "bcrit" => {
                let bs = distinct_values(inputs.runs.iter().filter_map(|x| x.b));
                if bs.len() < 3 {
                    let list: Vec<String> = bs.iter().map(|b| format!("{b}")).collect();
                    return Err(CliError::input(
                        "--law bcrit",
                        format!(
                            "{} has {} batch size(s) ({}): B_crit needs a batch-size axis of ≥ 3 values among runs that differ only in B",
                            r.source,
                            bs.len(),
                            list.join(", ")
                        ),
                    ));
                }
                (!r.bcrit_at.is_empty(), "B_crit")
            }
            other => {
                return Err(CliError::input(
                    "--law",
                    format!("{other:?}: the laws are n, d, c, nd, ns, bcrit, frontier and chinchilla"),
                ));
            }
        };
        if !fitted {
            let why: Vec<&str> =
                r.skipped.iter().filter(|s| s.law.starts_with(label)).map(|s| s.reason.as_str()).collect();
            return Err(CliError::NoFit(format!("{label} was asked for and could not be fitted: {}", why.join("; "))));
        }
    }
    Ok(())
}

/// L(N, S_min) (eq. 1.6) over the validation points of the runs at the shared batch size, past
/// warmup and the first tenth of training. Those runs share one schedule length: a cosine anneals
/// at its run's end, so curves of other lengths (the batch axis) would bend at other S. S_min by
/// eq. 5.4 with the streamed B_simple at each point; where a point has none, B_crit(L) held
/// inside the loss range it was fitted over (beyond it, its power law runs off: on the demo,
/// α_B = 0.05 made S_min collapse 50-fold at the lowest losses and R² fall to 0.12).
fn l_ns(
    inputs: &Inputs,
    law: Option<&BcritLaw>,
    base_batch: Option<f64>,
    ctx: &mut Ctx,
) -> (Option<TwoVarLaw>, Option<&'static str>) {
    let (mut n, mut s, mut l) = (vec![], vec![], vec![]);
    let source = if law.is_some() { "streamed B_simple (B_crit(L) where none)" } else { "streamed B_simple" };
    if inputs.curves.is_empty() {
        for r in inputs.runs.iter().filter(|r| r.b.is_none()) {
            if let (Some(nn), Some(ss)) = (r.n, r.s) {
                n.push(nn);
                s.push(ss);
                l.push(r.loss);
            }
        }
    } else {
        // Eq. 1.6 describes runs that are not data-limited: an overfitting curve is left out.
        let at_base = |c: &&crate::inputs::RunCurve| !c.data_limited && base_batch.is_none_or(|b| c.b == b);
        for c in inputs.curves.iter().filter(at_base) {
            let last = c.points.last().map_or(0.0, |p| p.step);
            for p in &c.points {
                let Some(v) = p.val else { continue };
                if p.step <= c.warmup_steps.max(0.1 * last) {
                    continue;
                }
                let bc = match (p.b_simple.filter(|b| b.is_finite() && *b > 0.0), law) {
                    (Some(b), _) => b,
                    (None, Some(law)) => law.predict_within(v),
                    (None, None) => continue,
                };
                n.push(c.n);
                s.push(s_min(p.step, c.b, bc));
                l.push(v);
            }
        }
    }
    if n.len() < 6 || distinct(n.iter().copied()) < 2 {
        ctx.skip("L(N,S)", format!("{} points with N and S; needs ≥ 6 over ≥ 2 distinct N", n.len()));
        return (None, None);
    }
    match fit_l_ns(&n, &s, &l, &ctx.boot) {
        Ok(f) => (Some(f), (!inputs.curves.is_empty()).then_some(source)),
        Err(e) => {
            ctx.skip("L(N,S)", e.to_string());
            (None, None)
        }
    }
}
