//! Every law the data supports, with bootstrap intervals: which runs fed it and which were left
//! out and why; laws the data cannot support are listed with the reason. [`fit_all`] runs the
//! whole pipeline: the laws, the hold-out check when asked, and the laws required.
use ladder_laws::{
    Bootstrap, ChinchillaOptions, Law, Run, TwoVarLaw, additivity, chinchilla_resampled, contradiction, fit_chinchilla,
    fit_frontier, fit_l_nd, fit_l_ns, s_min,
};

use crate::error::{AnalysisError, Result};
use crate::inputs::{CurvePoint, Inputs, RunCurve, RunKind, RunPoint};
use crate::options::{Ctx, Options};
use crate::report::{BSimple, ChinchillaReport, ComputeAxis, Report, SminSource};
use crate::select::{at_base, base_batch, distinct, distinct_values, frontier_curves, l_d_points, l_n_points};

/// The whole pipeline: the laws, the hold-out check (`opts.holdout`), the laws required
/// (`opts.law`); an error when the data supports no law at all.
pub fn fit_all(inputs: &Inputs, opts: &Options) -> Result<Report> {
    let deep = inputs.deep_enough(opts.min_layers());
    let inputs = &deep;
    let mut report = fit_laws(inputs, opts);
    if let Some(k) = opts.holdout {
        report.holdout = crate::holdout::holdout(inputs, &report, opts, k, fit_all)?;
    }
    if opts.backtest {
        report.backtest = crate::backtest::backtest(inputs, &report, opts, fit_all)?;
        report.backtest_bins = crate::backtest::summarise(&report.backtest);
        report.backtest_record = crate::backtest::record(&report.backtest);
    }
    required(&report, inputs, &opts.law)?;
    if !report.any_fitted() {
        let why: Vec<String> = report.skipped.iter().map(|s| format!("{}: {}", s.law, s.reason)).collect();
        let left: Vec<String> = report.excluded.iter().map(|e| format!("job {}: {}", e.job, e.reason)).collect();
        let mut msg = format!("{}: too few points for any fit ({} usable runs)", report.source, report.runs);
        if !why.is_empty() {
            msg.push_str(&format!("; {}", why.join("; ")));
        }
        if !left.is_empty() {
            msg.push_str(&format!("; left out: {}", left.join(", ")));
        }
        return Err(AnalysisError::NoFit(msg));
    }
    Ok(report)
}

/// Every law the data supports, each fitted to the runs and points [`crate::select`] picks.
pub fn fit_laws(inputs: &Inputs, opts: &Options) -> Report {
    let deep = inputs.deep_enough(opts.min_layers());
    let inputs = &deep;
    let mut skipped = Vec::new();
    let boot = Bootstrap { resamples: opts.bootstrap.max(20), ..Bootstrap::default() };
    let mut ctx = Ctx { boot, floor: opts.floor, cheap_resamples: opts.cheap_resamples, skipped: &mut skipped };
    let runs = &inputs.runs;
    let base_batch = base_batch(runs);
    let at_base = at_base(runs, base_batch);

    let (n, l) = l_n_points(&at_base);
    let l_n = ctx.power_of(Law::N, &n, &l);
    let l_n_points: Vec<(f64, f64)> = n.into_iter().zip(l).collect();
    let (d, l) = l_d_points(&at_base, runs);
    let l_d = ctx.power_of(Law::D, &d, &l);
    let l_d_points: Vec<(f64, f64)> = d.into_iter().zip(l).collect();
    // L(C) from CSV points with C (a sweep's compute law is the frontier below).
    let with_c: Vec<&RunPoint> = runs.iter().filter(|r| r.c.is_some() && r.job.is_none()).collect();
    let l_c = if with_c.len() >= 3 {
        let (c, l) = crate::select::best_per(&with_c, |r| r.c);
        ctx.power(Law::C, &c, &l)
    } else {
        None
    };
    let l_nd = l_nd(&at_base, &mut ctx);
    let (bcrit_at, bcrit_law, bcrit_vs_simple) = crate::bcrit::bcrit(inputs, &mut ctx);
    let cbs_overhead = opts.cbs_overhead.unwrap_or(crate::cbs::OVERHEAD);
    let (cbs, cbs_law, cbs_vs_d) = crate::cbs::cbs(inputs, &mut ctx, cbs_overhead);
    let (l_ns, l_ns_bcrit) = l_ns(inputs, bcrit_law.as_ref(), base_batch, &mut ctx);
    // The frontier against C_min = C/(1 + B/B_crit(L)) (Kaplan eq. 5.5) when B_crit(L) is fitted:
    // the compute each point would have needed at a batch far below B_crit.
    let curves = frontier_curves(&inputs.curves, |c, p| match &bcrit_law {
        Some(law) => p.flops / (1.0 + c.b / law.predict_within(p.smooth)),
        None => p.flops,
    });
    let frontier_compute = if bcrit_law.is_some() { ComputeAxis::CMin } else { ComputeAxis::C };
    let frontier = if distinct(curves.iter().map(|c| c.n)) >= 2 {
        fit_frontier(&curves, 30, ctx.floor, &ctx.boot).map_err(|e| ctx.skip(Law::Frontier, e.to_string())).ok()
    } else {
        if !inputs.curves.is_empty() {
            ctx.skip(Law::Frontier, "needs curves of ≥ 2 model sizes");
        }
        None
    };
    let ch_runs = chinchilla_runs(&at_base, opts.exclude_top);
    let chinchilla = chinchilla(&ch_runs, opts.exclude_top, &mut ctx);
    let additivity = additivity(&ch_runs).map(|a| a.with_fit(chinchilla.as_ref().map(|c| &c.fit)));
    let contradiction = match (&frontier, &l_d) {
        (Some(fr), Some(ld)) => contradiction(&fr.l_cmin, ld, fr.n_opt_coeff.value, fr.n_opt_exponent.value),
        _ => None,
    };
    Report {
        source: inputs.source.clone(),
        runs: runs.len(),
        used_jobs: runs.iter().filter_map(|r| r.job).collect(),
        excluded: inputs.excluded.clone(),
        shallow_sizes: inputs.shallow_sizes.clone(),
        min_layers: opts.min_layers(),
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
        b_simple: b_simple_ends(&inputs.curves),
        bcrit_vs_simple,
        chinchilla,
        additivity,
        contradiction,
        base_batch,
        holdout: Vec::new(),
        backtest: Vec::new(),
        backtest_bins: Vec::new(),
        backtest_record: Vec::new(),
        skipped,
        cbs,
        cbs_law,
        cbs_vs_d,
        cbs_overhead,
        branch_runs: runs.iter().filter_map(|r| Some((r.job?, r.branch.clone()?))).collect(),
        compute: inputs.compute,
        laws: crate::report::legend(),
    }
}

/// L(N, D) (eq. 1.5), like L(N) and L(D), at the shared batch size: runs that differ only in B
/// have one (N, D) and different losses, which the law does not describe.
fn l_nd(at_base: &[&RunPoint], ctx: &mut Ctx<'_>) -> Option<TwoVarLaw> {
    let nd: Vec<&RunPoint> = at_base.iter().copied().filter(|r| r.n.is_some() && r.d.is_some()).collect();
    if nd.len() >= 6 && distinct(nd.iter().filter_map(|r| r.d)) >= 2 && distinct(nd.iter().filter_map(|r| r.n)) >= 2 {
        let (nn, dd, ll) = unzip3(nd.iter().map(|r| (r.n.unwrap_or(0.0), r.d.unwrap_or(0.0), r.loss)));
        fit_l_nd(&nn, &dd, &ll, ctx.floor, &ctx.boot).map_err(|e| ctx.skip(Law::ND, e.to_string())).ok()
    } else {
        ctx.skip(Law::ND, format!("{} runs with N and D; needs ≥ 6 with ≥ 2 distinct N and ≥ 2 distinct D", nd.len()));
        None
    }
}

/// The runs Chinchilla's form is fitted to (and its additivity tested on): those at the base
/// batch with N and D, less the `exclude_top` of highest loss.
fn chinchilla_runs(at_base: &[&RunPoint], exclude_top: usize) -> Vec<Run> {
    let mut ch: Vec<Run> =
        at_base.iter().filter_map(|r| Some(Run { n: r.n?, d: r.d.or(r.tokens)?, loss: r.loss })).collect();
    ch.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    ch.truncate(ch.len().saturating_sub(exclude_top));
    ch
}

/// Chinchilla on (N, D, loss), D the unique tokens seen: a run that repeats a small data set
/// gets no credit for its repeats.
fn chinchilla(ch: &[Run], exclude_top: usize, ctx: &mut Ctx<'_>) -> Option<ChinchillaReport> {
    if ch.len() < 6 || distinct(ch.iter().map(|r| r.d)) < 2 || distinct(ch.iter().map(|r| r.n)) < 2 {
        ctx.skip(Law::Chinchilla, format!("{} runs; needs ≥ 6 with ≥ 2 distinct N and ≥ 2 distinct D", ch.len()));
        return None;
    }
    match fit_chinchilla(ch, &ChinchillaOptions::default()) {
        Ok(fit) => {
            // Each resample refits by L-BFGS from the full fit's optimum: about 1 ms, cheap
            // enough for the one-variable laws' floor of resamples.
            let boot = Bootstrap { resamples: ctx.boot.resamples.max(ctx.cheap_resamples), ..ctx.boot };
            let (intervals, draws, tally) = chinchilla_resampled(ch, &fit, &boot);
            Some(ChinchillaReport { fit, intervals, excluded_highest_loss: exclude_top, tally, draws })
        }
        Err(e) => {
            ctx.skip(Law::Chinchilla, e.to_string());
            None
        }
    }
}

/// B_simple at the end of each run (the median of its last tenth), beside B_crit.
fn b_simple_ends(curves: &[RunCurve]) -> Vec<BSimple> {
    curves
        .iter()
        .filter_map(|c| {
            let tail = &c.points[c.points.len() * 9 / 10..];
            let mut bs: Vec<f64> =
                tail.iter().filter_map(|p| p.b_simple).filter(|v| v.is_finite() && *v > 0.0).collect();
            bs.sort_by(f64::total_cmp);
            let loss = tail.iter().map(|p| p.smooth).fold(f64::INFINITY, f64::min);
            (!bs.is_empty()).then(|| BSimple { job: Some(c.job), loss, b_simple: bs[bs.len() / 2] })
        })
        .collect()
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

/// `--law`: every law named must have been fitted.
fn required(r: &Report, inputs: &Inputs, laws: &[Law]) -> Result<()> {
    for &law in laws {
        let fitted = match law {
            Law::N => r.l_n.is_some(),
            Law::D => r.l_d.is_some(),
            Law::C => r.l_c.is_some(),
            Law::CMin | Law::Frontier => r.frontier.is_some(),
            Law::ND => r.l_nd.is_some(),
            Law::NS => r.l_ns.is_some(),
            Law::Chinchilla => r.chinchilla.is_some(),
            Law::BCrit | Law::BCritL => {
                let bs = distinct_values(inputs.runs.iter().filter_map(|x| x.b));
                if bs.len() < 3 {
                    let list: Vec<String> = bs.iter().map(|b| format!("{b}")).collect();
                    return Err(AnalysisError::input(
                        "--law",
                        format!(
                            "{law}: {} has {} batch size(s) ({}): B_crit needs a batch-size axis of ≥ 3 values among runs that differ only in B",
                            r.source,
                            bs.len(),
                            list.join(", ")
                        ),
                    ));
                }
                if law == Law::BCrit { !r.bcrit_at.is_empty() } else { r.bcrit_law.is_some() }
            }
            Law::Cbs => !r.cbs.is_empty(),
            Law::CbsL => r.cbs_law.is_some(),
            Law::CbsD => r.cbs_vs_d.is_some(),
        };
        if !fitted {
            let why: Vec<&str> = r.skipped.iter().filter(|s| s.law == law).map(|s| s.reason.as_str()).collect();
            return Err(AnalysisError::NoFit(format!(
                "{law} was asked for and could not be fitted: {}",
                if why.is_empty() { "the data has nothing it takes".to_string() } else { why.join("; ") }
            )));
        }
    }
    Ok(())
}

/// L(N,S) takes at most this many points per curve, and about this many in all (at least
/// [`NS_MIN_PER_CURVE`] per curve), log-spaced in step: a curve's later points say no more about
/// its shape than its earlier ones, and the fit's cost grows with the points (500 curves of 400
/// validation points took hours to bootstrap).
const NS_PER_CURVE: usize = 64;
const NS_POINTS: usize = 2048;
const NS_MIN_PER_CURVE: usize = 8;

/// At most `k` of `points` (in step order), the nearest to `k` log-spaced steps from the first
/// to the last; all of them when there are no more than `k`.
fn log_spaced<'a>(points: &[&'a CurvePoint], k: usize) -> Vec<&'a CurvePoint> {
    if points.len() <= k || k < 2 {
        return points.to_vec();
    }
    let (lo, hi) = (points[0].step.max(1.0).ln(), points[points.len() - 1].step.max(1.0).ln());
    let mut out: Vec<&CurvePoint> = Vec::with_capacity(k);
    let mut at = 0;
    for i in 0..k {
        let target = lo + (hi - lo) * i as f64 / (k - 1) as f64;
        while at + 1 < points.len()
            && (points[at + 1].step.max(1.0).ln() - target).abs() <= (points[at].step.max(1.0).ln() - target).abs()
        {
            at += 1;
        }
        if out.last().is_none_or(|l| !std::ptr::eq(*l, points[at])) {
            out.push(points[at]);
        }
    }
    out
}

/// L(N, S_min) (eq. 1.6) over the validation points of the runs at the shared batch size (with
/// branches, of the constant-rate trunks), past warmup and the first tenth of training. Those
/// runs share one schedule length: a cosine anneals at its run's end, so curves of other lengths
/// (the batch axis) would bend at other S. S_min by eq. 5.4 with the streamed B_simple at each
/// point; where a point has none, B_crit(L) held inside the loss range it was fitted over
/// (beyond it, its power law runs off: on the demo, α_B = 0.05 made S_min collapse 50-fold at
/// the lowest losses and R² fall to 0.12).
fn l_ns(
    inputs: &Inputs,
    law: Option<&ladder_laws::BcritLaw>,
    base_batch: Option<f64>,
    ctx: &mut Ctx<'_>,
) -> (Option<TwoVarLaw>, Option<SminSource>) {
    let (mut n, mut s, mut l) = (vec![], vec![], vec![]);
    let source = if law.is_some() { SminSource::BSimpleOrBcritL } else { SminSource::BSimple };
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
        // With branches the trunks are the one schedule (a constant rate) that every size runs;
        // a cooldown's own points anneal, below its trunk's at the same S, and are left out.
        let trunks = inputs.curves.iter().any(|c| c.kind == RunKind::Trunk);
        let at_base = |c: &&RunCurve| {
            !c.data_limited && base_batch.is_none_or(|b| c.b == b) && (!trunks || c.kind == RunKind::Trunk)
        };
        let curves: Vec<&RunCurve> = inputs.curves.iter().filter(at_base).collect();
        let per_curve = (NS_POINTS / curves.len().max(1)).clamp(NS_MIN_PER_CURVE, NS_PER_CURVE);
        for c in curves {
            let last = c.points.last().map_or(0.0, |p| p.step);
            let past = |p: &&CurvePoint| p.val.is_some() && p.step > c.warmup_steps.max(0.1 * last);
            let eligible: Vec<&CurvePoint> = c.points.iter().filter(past).collect();
            for p in log_spaced(&eligible, per_curve) {
                let Some(v) = p.val else { continue };
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
        ctx.skip(Law::NS, format!("{} points with N and S; needs ≥ 6 over ≥ 2 distinct N", n.len()));
        return (None, None);
    }
    match fit_l_ns(&n, &s, &l, &ctx.boot) {
        Ok(f) => (Some(f), (!inputs.curves.is_empty()).then_some(source)),
        Err(e) => {
            ctx.skip(Law::NS, e.to_string());
            (None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: f64) -> CurvePoint {
        CurvePoint { step, tokens: step, flops: step, train: 1.0, smooth: 1.0, val: Some(1.0), b_simple: None }
    }

    #[test]
    fn log_spaced_keeps_short_curves_and_thins_long_ones_evenly_in_log_step() {
        let short: Vec<CurvePoint> = (1..=10).map(|s| at(s as f64 * 100.0)).collect();
        let refs: Vec<&CurvePoint> = short.iter().collect();
        assert_eq!(log_spaced(&refs, 64).len(), 10);

        let long: Vec<CurvePoint> = (1..=40_000).map(|s| at(s as f64)).collect();
        let refs: Vec<&CurvePoint> = long.iter().collect();
        let picked: Vec<f64> = log_spaced(&refs, 5).iter().map(|p| p.step).collect();
        // 1, 40000^(1/4) ≈ 14, 40000^(1/2) = 200, 40000^(3/4) ≈ 2828, 40000.
        assert_eq!(picked, vec![1.0, 14.0, 200.0, 2828.0, 40_000.0]);
        // Steps in order, none twice, even where the early steps are closer than the targets.
        let picked: Vec<f64> = log_spaced(&refs, 64).iter().map(|p| p.step).collect();
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "{picked:?}");
        assert!((50..=64).contains(&picked.len()), "{}", picked.len());
    }
}
