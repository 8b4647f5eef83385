//! The critical batch size by branching (Merrill et al. 2025), by token overhead (Zhang et al.
//! 2024). At a point of a constant-LR trunk, branches continue for the same window of tokens at
//! k = 1, 2, 4, … times the batch, the learning rate scaled by a stated rule (√k by default). A
//! larger batch that keeps up ends its window at the loss the k = 1 window reaches in about as
//! many tokens; past the critical batch size it needs more.
//!
//! The rule: map each window's end loss onto the k = 1 window's loss-against-tokens curve (its
//! evaluations, at least ten per window, smoothed as L = a + b·ln T in tokens from the root);
//! the window's token overhead is its tokens over the tokens k = 1 takes to that loss, minus
//! one. The CBS is the largest k·B whose overhead is at most 20% (`ladder fit
//! --cbs-overhead`), interpolated in log B towards the next batch tried; its interval is the
//! bracket of batches tried on either side (the grid's resolution). A point where every batch
//! keeps up is a lower bound and is not fitted.
//! Unlike a tolerance on the loss itself, the overhead means the same at every D: late in
//! training a window's whole gain can be a small share of the loss.
use ladder_laws::{BcritLaw, Estimate, Law, fit_bcrit_law};
use serde::Serialize;

use crate::inputs::{Inputs, Window, group_by};
use crate::options::Ctx;

/// The token overhead a window may have and still count as keeping up.
pub const OVERHEAD: f64 = 0.2;

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
    /// The batches tried either side of the crossing (hi None: every batch kept up).
    #[serde(default)]
    pub lo: f64,
    #[serde(default)]
    pub hi: Option<f64>,
    /// Every batch tried kept up: the CBS is at least `cbs`.
    pub lower_bound: bool,
    /// (batch, token overhead against the k = 1 window) per window.
    #[serde(default)]
    pub overhead: Vec<(f64, f64)>,
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

/// Where the overheads of one point's windows cross a threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    pub cbs: f64,
    pub lower_bound: bool,
    pub lo: f64,
    pub hi: Option<f64>,
}

/// The CBS from the `(batch, overhead)` of one point's windows: the largest batch whose overhead
/// is at most `threshold`, interpolated in log B towards the next larger batch tried (which
/// needs more); a lower bound when the largest batch tried keeps up.
pub fn crossing(overheads: &[(f64, f64)], threshold: f64) -> Option<Crossing> {
    let mut w: Vec<(f64, f64)> = overheads.iter().copied().filter(|(b, o)| b.is_finite() && !o.is_nan()).collect();
    w.sort_by(|a, b| a.0.total_cmp(&b.0));
    let last_ok = w.iter().rposition(|&(_, o)| o <= threshold).unwrap_or(0);
    let prev = *w.get(last_ok)?;
    let Some(&(b, o)) = w.get(last_ok + 1) else {
        return Some(Crossing { cbs: prev.0, lower_bound: true, lo: prev.0, hi: None });
    };
    let o0 = prev.1.min(threshold);
    let t = if o.is_finite() && o > o0 { ((threshold - o0) / (o - o0)).clamp(0.0, 1.0) } else { 0.0 };
    let cbs = (prev.0.ln() + t * (b.ln() - prev.0.ln())).exp();
    Some(Crossing { cbs, lower_bound: false, lo: prev.0, hi: Some(b) })
}

/// Tokens the k = 1 window took to first reach `loss`: its evaluations `(tokens, loss)`
/// interpolated in tokens. A loss above its first evaluation maps to that evaluation (so the
/// overhead is a lower bound); None when it never got there (the other window did better).
pub fn tokens_to(curve: &[(f64, f64)], loss: f64) -> Option<f64> {
    let mut prev: Option<(f64, f64)> = None;
    for &(t, l) in curve {
        if l <= loss {
            return Some(match prev {
                Some((t0, l0)) if l0 > l => t0 + (t - t0) * (l0 - loss) / (l0 - l),
                _ => t,
            });
        }
        prev = Some((t, l));
    }
    None
}

/// The k = 1 window's loss against tokens, smoothed: L = a + b·ln(T0 + t) fitted by least
/// squares to its evaluations (T0 the tokens at the branch point), so that one noisy evaluation
/// late in training, where a window gains little, does not decide where another window's loss
/// maps. None with fewer than three evaluations or a curve that does not fall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct K1Curve {
    pub a: f64,
    pub b: f64,
    pub t0: f64,
}

impl K1Curve {
    pub fn fit(t0: f64, curve: &[(f64, f64)]) -> Option<K1Curve> {
        let pts: Vec<(f64, f64)> =
            curve.iter().filter(|(t, l)| *t > 0.0 && l.is_finite()).map(|&(t, l)| ((t0 + t).ln(), l)).collect();
        if pts.len() < 3 {
            return None;
        }
        let (x, y): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
        let (a, b) = ladder_laws::optimize::linear(&x, &y)?;
        (b < 0.0 && a.is_finite()).then_some(K1Curve { a, b, t0 })
    }

    /// Tokens since the branch point at which the smoothed k = 1 curve reaches `loss`.
    pub fn tokens_to(&self, loss: f64) -> f64 {
        ((loss - self.a) / self.b).exp() - self.t0
    }
}

/// Each window's token overhead against the point's k = 1 window, as `(batch, overhead)`: its
/// tokens over the tokens the (smoothed) k = 1 curve takes to its end loss, minus one. None
/// without a k = 1 window evaluated at least twice.
pub fn overheads(ws: &[Window]) -> Option<Vec<(f64, f64)>> {
    let base = ws.iter().find(|w| w.k == 1.0)?;
    if base.curve.len() < 2 {
        return None;
    }
    let smooth = K1Curve::fit(base.tokens, &base.curve);
    let out = ws
        .iter()
        .filter(|w| w.loss.is_finite())
        .map(|w| {
            if w.k == 1.0 {
                return (w.batch, 0.0);
            }
            let t = match smooth {
                Some(c) => Some(c.tokens_to(w.loss)),
                None => tokens_to(&base.curve, w.loss),
            };
            let o = match t {
                Some(t) if t > 0.0 => w.window_tokens / t - 1.0,
                Some(_) => f64::INFINITY,
                None => 0.0,
            };
            (w.batch, o)
        })
        .collect();
    Some(out)
}

/// The CBS at each branch point, B_crit(L) fitted to them, and the CBS against D.
pub(crate) fn cbs(
    inputs: &Inputs,
    ctx: &mut Ctx<'_>,
    threshold: f64,
) -> (Vec<CbsPoint>, Option<BcritLaw>, Option<CbsVsD>) {
    let mut out = Vec::new();
    if inputs.windows.is_empty() {
        return (out, None, None);
    }
    for ((trunk, step), ws) in group_by(&inputs.windows, |w: &Window| (w.trunk, w.step)) {
        if ws.len() < 2 {
            continue;
        }
        let Some(overhead) = overheads(&ws) else { continue };
        let Some(c) = crossing(&overhead, threshold) else { continue };
        let curve = inputs.curves.iter().find(|c| c.job == trunk);
        let at = curve.and_then(|c| c.points.iter().rev().find(|p| p.step <= step as f64));
        let b_simple = at.and_then(|p| p.b_simple).filter(|b| b.is_finite() && *b > 0.0);
        out.push(CbsPoint {
            trunk,
            n: ws[0].n,
            step,
            tokens: ws[0].tokens,
            loss: at.map_or(f64::NAN, |p| p.smooth),
            cbs: c.cbs,
            lo: c.lo,
            hi: c.hi,
            lower_bound: c.lower_bound,
            overhead,
            b_simple,
            ratio: b_simple.map(|b| b / c.cbs),
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

    fn window(k: f64, loss: f64, curve: Vec<(f64, f64)>) -> Window {
        Window {
            job: 0,
            trunk: 1,
            step: 10,
            tokens: 1e5,
            n: 1e5,
            k,
            batch: 1024.0 * k,
            window_tokens: 1e5,
            loss,
            curve,
        }
    }

    #[test]
    fn the_cbs_is_where_the_token_overhead_crosses_its_threshold() {
        // Overheads at B = 1k, 2k, 4k, 8k: 4k needs 10% more tokens, 8k 50% more: 20% is crossed
        // a quarter of the way from 4k to 8k in log B.
        let o = [(1024.0, 0.0), (2048.0, 0.02), (4096.0, 0.1), (8192.0, 0.5)];
        let c = crossing(&o, 0.2).expect("a crossing");
        assert!(!c.lower_bound && c.lo == 4096.0 && c.hi == Some(8192.0), "{c:?}");
        assert!((c.cbs - 4096.0 * 2f64.powf(0.25)).abs() < 1e-6, "{c:?}");
        let all = crossing(&o[..3], 0.2).expect("a bound");
        assert!(all.lower_bound && all.cbs == 4096.0 && all.hi.is_none(), "{all:?}");
        let shuffled = [o[2], o[0], o[3], o[1]];
        assert_eq!(crossing(&shuffled, 0.2), crossing(&o, 0.2));
    }

    #[test]
    fn a_windows_end_loss_is_mapped_onto_the_smoothed_k1_curve() {
        // k = 1 follows L = 10 − 0.5·ln(1e5 + t) from its branch point at 1e5 tokens.
        let l = |t: f64| 10.0 - 0.5 * (1e5 + t).ln();
        let curve: Vec<(f64, f64)> = (1..=10).map(|i| (1e4 * i as f64, l(1e4 * i as f64))).collect();
        let ws = vec![
            window(1.0, l(1e5), curve.clone()),
            window(2.0, l(9e4), Vec::new()),   // k = 1 reached it at 9e4: 11% overhead
            window(4.0, l(5.5e4), Vec::new()), // at 5.5e4: 82%
        ];
        let o = overheads(&ws).expect("overheads");
        assert_eq!(o[0], (1024.0, 0.0));
        assert!((o[1].1 - (1e5 / 9e4 - 1.0)).abs() < 1e-6, "{o:?}");
        assert!((o[2].1 - (1e5 / 5.5e4 - 1.0)).abs() < 1e-6, "{o:?}");
        let c = crossing(&o, OVERHEAD).expect("a crossing");
        assert!(c.lo == 2048.0 && c.hi == Some(4096.0) && c.cbs > 2048.0 && c.cbs < 4096.0, "{c:?}");
        // One noisy evaluation moves the smoothed curve little: a window's overhead stays near.
        let mut noisy = curve.clone();
        noisy[8].1 -= 0.01;
        let ws2 = vec![window(1.0, l(1e5), noisy), ws[1].clone()];
        let o2 = overheads(&ws2).expect("overheads");
        assert!((o2[1].1 - o[1].1).abs() < 0.05, "{o2:?} against {o:?}");
        // Without a k = 1 curve there is nothing to map onto.
        assert!(overheads(&ws[1..]).is_none());
        // With two evaluations only, the curve is interpolated.
        assert!((tokens_to(&curve, l(5.5e4)).unwrap() - 5.5e4).abs() < 2e3);
        assert_eq!(tokens_to(&curve, l(2e5)), None, "better than k = 1 ever got");
        assert_eq!(tokens_to(&curve, l(0.0)), Some(1e4), "above its first evaluation");
    }

    #[test]
    fn the_cbs_is_the_largest_batch_that_keeps_up() {
        // k = 2 is unlucky (30%), k = 4 keeps up (10%), k = 8 does not (50%): the CBS lies
        // between 4k and 8k, not below 2k.
        let o = [(1024.0, 0.0), (2048.0, 0.3), (4096.0, 0.1), (8192.0, 0.5)];
        let c = crossing(&o, 0.2).expect("a crossing");
        assert!(c.lo == 4096.0 && c.hi == Some(8192.0) && !c.lower_bound, "{c:?}");
    }
}
