//! B_crit from a batch-size axis: within each group of runs that differ only in B, at target
//! losses all of them reach, S = S_min + E_min/B gives B_crit = E_min/S_min; then B_crit(L) over
//! those estimates, and the streamed B_simple beside each.
use ladder_laws::{BcritAtLoss, BcritLaw, Law, fit_bcrit_at, fit_bcrit_law, steps_to_loss};

use crate::inputs::{Inputs, RunCurve, RunPoint, group_by};
use crate::options::Ctx;
use crate::report::BcritVsSimple;
use crate::select::distinct;

/// Target losses per batch-size group, log-spaced between the loss every run reached and the
/// loss every run had passed a tenth of the way through.
const BCRIT_TARGETS: usize = 7;

/// B_crit at several target losses per group of runs that differ only in B, then B_crit(L).
pub(crate) fn bcrit(inputs: &Inputs, ctx: &mut Ctx<'_>) -> (Vec<BcritAtLoss>, Option<BcritLaw>, Vec<BcritVsSimple>) {
    let mut at = Vec::new();
    let mut vs = Vec::new();
    if inputs.curves.is_empty() {
        from_rows(inputs, ctx, &mut at);
    } else {
        let runs: Vec<&RunPoint> = inputs.runs.iter().collect();
        for (group, members) in group_by(&runs, |r| r.group.clone()) {
            let curves: Vec<&RunCurve> =
                inputs.curves.iter().filter(|c| members.iter().any(|m| m.job == Some(c.job))).collect();
            if distinct(curves.iter().map(|c| c.b)) < 3 {
                continue;
            }
            of_group(&group, &curves, ctx, &mut at, &mut vs);
        }
        if at.is_empty() {
            ctx.skip(Law::BCrit, "no group of runs differing only in batch size has ≥ 3 distinct B");
        }
    }
    let law = if at.len() >= 3 {
        let (l, b): (Vec<f64>, Vec<f64>) = at.iter().map(|a| (a.target_loss, a.b_crit.value)).unzip();
        fit_bcrit_law(&l, &b, &ctx.boot).map_err(|e| ctx.skip(Law::BCritL, e.to_string())).ok()
    } else {
        if !at.is_empty() {
            ctx.skip(Law::BCritL, format!("{} B_crit estimates; needs ≥ 3", at.len()));
        }
        None
    };
    (at, law, vs)
}

/// CSV rows with B, S and loss: one fit per distinct loss (the target).
fn from_rows(inputs: &Inputs, ctx: &mut Ctx<'_>, at: &mut Vec<BcritAtLoss>) {
    let rows: Vec<&RunPoint> = inputs.runs.iter().filter(|r| r.b.is_some() && r.s.is_some()).collect();
    for (key, g) in group_by(&rows, |r| r.loss.to_bits()) {
        let (b, s): (Vec<f64>, Vec<f64>) = g.iter().map(|r| (r.b.unwrap_or(0.0), r.s.unwrap_or(0.0))).unzip();
        match fit_bcrit_at(f64::from_bits(key), &b, &s, &ctx.boot) {
            Ok(f) => at.push(f),
            Err(e) => ctx.skip(Law::BCrit, e.to_string()),
        }
    }
}

/// One group's B_crit at each target loss, and the streamed B_simple where its runs reached it.
fn of_group(
    group: &str,
    curves: &[&RunCurve],
    ctx: &mut Ctx<'_>,
    at: &mut Vec<BcritAtLoss>,
    vs: &mut Vec<BcritVsSimple>,
) {
    // Targets between the loss every run passed early on and the best every run reached.
    let floor =
        curves.iter().map(|c| c.points.iter().map(|p| p.smooth).fold(f64::INFINITY, f64::min)).fold(0.0, f64::max);
    let ceil = curves
        .iter()
        .map(|c| c.points.get(c.points.len() / 10).map_or(f64::INFINITY, |p| p.smooth))
        .fold(f64::INFINITY, f64::min);
    let (lo, hi) = (floor * 1.01, ceil);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        ctx.skip(Law::BCrit, format!("{group}: the runs share no range of loss"));
        return;
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
                        group: group.to_string(),
                        target_loss: target,
                        b_crit,
                        b_simple: mid,
                        ratio: mid / b_crit,
                    });
                }
                at.push(f);
            }
            Err(e) => ctx.skip(Law::BCrit, format!("{group}: {e}")),
        }
    }
}
