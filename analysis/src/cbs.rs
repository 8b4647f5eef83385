//! The critical batch size by branching (Merrill et al. 2025). At a point of a constant-LR trunk,
//! branches continue for the same window of tokens at k = 1, 2, 4, … times the batch, the
//! learning rate scaled by √k. A larger batch that keeps up ends the window at the loss of the
//! k = 1 branch; past the critical batch size it falls behind.
//!
//! The rule: the CBS is the largest batch whose window-end validation loss is within a relative
//! tolerance ε of the k = 1 branch's (default 1%), interpolated in log B where the excess first
//! crosses ε. Why this rule rather than a test against the evaluation noise: every branch of a
//! point is evaluated on the same fixed held-out windows, so the comparison is paired and the
//! evaluation's sampling noise largely cancels; what remains is the training noise of a window,
//! which ε bounds from above for the windows these studies use (the seed-repeat bench measures
//! how well). A point where every batch keeps up is reported as a lower bound and not fitted.
use ladder_laws::{BcritLaw, Estimate, Law, fit_bcrit_law};
use serde::Serialize;

use crate::inputs::{Inputs, Window, group_by};
use crate::options::Ctx;

/// The CBS at one point of one trunk.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CbsPoint {
    pub trunk: u64,
    pub n: f64,
    pub step: u64,
    /// Tokens at the branch point (D so far).
    pub tokens: f64,
    /// The trunk's smoothed train loss at the branch point.
    pub loss: f64,
    /// Tokens per batch.
    pub cbs: f64,
    /// Every batch tried kept up: the CBS is at least `cbs`.
    pub lower_bound: bool,
    /// (batch, relative excess loss over the k = 1 window) per window.
    pub excess: Vec<(f64, f64)>,
    /// The streamed gradient noise scale at the branch point, and B_simple / CBS.
    pub b_simple: Option<f64>,
    pub ratio: Option<f64>,
}

/// CBS ∝ D^γ over the points that are not bounds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CbsVsD {
    pub gamma: Estimate,
    /// The CBS at D = 1e6 tokens.
    pub at_1m: Estimate,
    pub r2: f64,
    pub points: usize,
}

/// The CBS where the window losses of one point cross `epsilon`; (cbs, lower bound).
pub fn crossing(windows: &[(f64, f64)], epsilon: f64) -> Option<(f64, bool)> {
    let mut w: Vec<(f64, f64)> = windows.iter().copied().filter(|(b, l)| b.is_finite() && l.is_finite()).collect();
    w.sort_by(|a, b| a.0.total_cmp(&b.0));
    let &(b0, l0) = w.first()?;
    let excess = |l: f64| (l - l0) / l0;
    let mut prev = (b0, 0.0);
    for &(b, l) in &w[1..] {
        let e = excess(l);
        if e > epsilon {
            let t = ((epsilon - prev.1) / (e - prev.1)).clamp(0.0, 1.0);
            return Some(((prev.0.ln() + t * (b.ln() - prev.0.ln())).exp(), false));
        }
        prev = (b, e);
    }
    Some((prev.0, true))
}

/// The CBS at each branch point, B_crit(L) fitted to them, and the CBS against D.
pub(crate) fn cbs(
    inputs: &Inputs,
    ctx: &mut Ctx<'_>,
    epsilon: f64,
) -> (Vec<CbsPoint>, Option<BcritLaw>, Option<CbsVsD>) {
    let mut out = Vec::new();
    if inputs.windows.is_empty() {
        return (out, None, None);
    }
    for ((trunk, step), ws) in group_by(&inputs.windows, |w: &Window| (w.trunk, w.step)) {
        if ws.len() < 2 {
            continue;
        }
        let pairs: Vec<(f64, f64)> = ws.iter().map(|w| (w.batch, w.loss)).collect();
        let Some((cbs, lower_bound)) = crossing(&pairs, epsilon) else { continue };
        let base = pairs.iter().copied().fold((f64::INFINITY, 0.0), |a, p| if p.0 < a.0 { p } else { a });
        let curve = inputs.curves.iter().find(|c| c.job == trunk);
        let at = curve.and_then(|c| c.points.iter().rev().find(|p| p.step <= step as f64));
        let b_simple = at.and_then(|p| p.b_simple).filter(|b| b.is_finite() && *b > 0.0);
        out.push(CbsPoint {
            trunk,
            n: ws[0].n,
            step,
            tokens: ws[0].tokens,
            loss: at.map_or(f64::NAN, |p| p.smooth),
            cbs,
            lower_bound,
            excess: pairs.iter().map(|&(b, l)| (b, (l - base.1) / base.1)).collect(),
            b_simple,
            ratio: b_simple.map(|b| b / cbs),
        });
    }
    out.sort_by(|a, b| a.n.total_cmp(&b.n).then(a.tokens.total_cmp(&b.tokens)));
    let measured: Vec<&CbsPoint> = out.iter().filter(|p| !p.lower_bound && p.loss.is_finite()).collect();
    let law = if measured.len() >= 3 {
        let (l, b): (Vec<f64>, Vec<f64>) = measured.iter().map(|p| (p.loss, p.cbs)).unzip();
        fit_bcrit_law(&l, &b, &ctx.boot).map_err(|e| ctx.skip(Law::CbsL, e.to_string())).ok()
    } else {
        ctx.skip(Law::CbsL, format!("{} measured CBS points (not bounds); needs ≥ 3", measured.len()));
        None
    };
    let vs_d = vs_d(&measured, ctx);
    (out, law, vs_d)
}

fn line(x: &[f64], y: &[f64]) -> Option<Vec<f64>> {
    let (a, b) = ladder_laws::optimize::linear(x, y)?;
    Some(vec![b, (a + b * 1e6f64.ln()).exp()])
}

fn vs_d(measured: &[&CbsPoint], ctx: &mut Ctx<'_>) -> Option<CbsVsD> {
    if crate::select::distinct(measured.iter().map(|p| p.tokens)) < 3 {
        ctx.skip(Law::CbsD, "needs measured CBS points at ≥ 3 distinct D");
        return None;
    }
    let ld: Vec<f64> = measured.iter().map(|p| p.tokens.ln()).collect();
    let lb: Vec<f64> = measured.iter().map(|p| p.cbs.ln()).collect();
    let point = line(&ld, &lb)?;
    let est = ladder_laws::bootstrap::intervals(ld.len(), &point, &ctx.boot, |idx| {
        let (x, y): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (ld[i], lb[i])).unzip();
        line(&x, &y)
    });
    let pred: Vec<f64> = ld.iter().map(|x| point[1].ln() + point[0] * (x - 1e6f64.ln())).collect();
    Some(CbsVsD { gamma: est[0], at_1m: est[1], r2: ladder_laws::r_squared(&lb, &pred), points: ld.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cbs_is_where_the_excess_loss_crosses_epsilon() {
        // Losses at B = 1k, 2k, 4k, 8k: 4k is 0.5% behind, 8k 2.5% behind: ε = 1% is crossed
        // a quarter of the way from 4k to 8k in log B.
        let w = [(1024.0, 2.0), (2048.0, 2.002), (4096.0, 2.01), (8192.0, 2.05)];
        let (cbs, bound) = crossing(&w, 0.01).expect("a crossing");
        assert!(!bound);
        assert!((cbs - 4096.0 * 2f64.powf(0.25)).abs() < 1e-6, "{cbs}");
        // Every batch keeps up: a lower bound at the largest.
        assert_eq!(crossing(&w[..3], 0.01), Some((4096.0, true)));
        // Order of the windows does not matter.
        let shuffled = [w[2], w[0], w[3], w[1]];
        assert_eq!(crossing(&shuffled, 0.01), crossing(&w, 0.01));
    }
}
