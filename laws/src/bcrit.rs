//! The critical batch size. From a batch-size sweep: at a target loss, S = S_min + E_min/B
//! (McCandlish et al. 2018; Kaplan eq. 5.1), so B_crit = E_min/S_min. Across targets:
//! B_crit(L) = B*/L^(1/α_B) (Kaplan eq. 1.4). Plus Kaplan's S_min and C_min adjustments.
use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate, intervals};
use crate::error::{LawsError, Result};
use crate::law::Law;
use crate::optimize::{linear, r_squared};
use crate::power::check;
use crate::range::FitRange;

/// Steps to first reach `target` on a curve of (step, loss), from its running minimum,
/// interpolated in log loss between the two points around the crossing.
pub fn steps_to_loss(curve: &[(f64, f64)], target: f64) -> Option<f64> {
    let mut best = f64::INFINITY;
    let mut prev: Option<(f64, f64)> = None;
    for &(s, l) in curve {
        if !l.is_finite() {
            continue;
        }
        let l = l.min(best);
        best = l;
        if l <= target {
            return Some(match prev {
                Some((ps, pl)) if pl > l => ps + (s - ps) * (pl.ln() - target.ln()) / (pl.ln() - l.ln()),
                _ => s,
            });
        }
        prev = Some((s, l));
    }
    None
}

/// B_crit at one target loss.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BcritAtLoss {
    pub target_loss: f64,
    pub s_min: Estimate,
    /// In tokens.
    pub e_min: Estimate,
    /// E_min / S_min, in tokens.
    pub b_crit: Estimate,
    pub points: usize,
}

/// Weighted least squares on relative residuals (S − Ŝ)/S: step counts carry relative noise
/// and span decades, so unweighted residuals would let the smallest batches decide alone.
fn hyperbola(inv_b: &[f64], s: &[f64]) -> Option<Vec<f64>> {
    let w: Vec<f64> = s.iter().map(|v| 1.0 / (v * v)).collect();
    let sw: f64 = w.iter().sum();
    let mx = w.iter().zip(inv_b).map(|(w, x)| w * x).sum::<f64>() / sw;
    let my = w.iter().zip(s).map(|(w, y)| w * y).sum::<f64>() / sw;
    let sxx: f64 = (0..s.len()).map(|i| w[i] * (inv_b[i] - mx).powi(2)).sum();
    let sxy: f64 = (0..s.len()).map(|i| w[i] * (inv_b[i] - mx) * (s[i] - my)).sum();
    if sxx.is_nan() || sxx <= 0.0 {
        return None;
    }
    let e_min = sxy / sxx;
    let s_min = my - e_min * mx;
    (s_min > 0.0 && e_min > 0.0).then(|| vec![s_min, e_min, e_min / s_min])
}

/// Fits S = S_min + E_min/B to runs that reached `target_loss` with batch `batch[i]` (tokens)
/// after `steps[i]` steps.
pub fn fit_bcrit_at(target_loss: f64, batch: &[f64], steps: &[f64], boot: &Bootstrap) -> Result<BcritAtLoss> {
    const LAW: Law = Law::BCrit;
    let mut distinct = batch.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if batch.len() != steps.len() || distinct.len() < 3 {
        return Err(LawsError::TooFewPoints { law: LAW, got: distinct.len(), need: 3 });
    }
    check(LAW, "B", batch)?;
    check(LAW, "S", steps)?;
    let inv: Vec<f64> = batch.iter().map(|b| 1.0 / b).collect();
    let v = hyperbola(&inv, steps).ok_or_else(|| LawsError::NoSolution {
        law: LAW,
        message: format!("at loss {target_loss:.4}, steps do not fall as 1/B (S_min or E_min ≤ 0)"),
    })?;
    let est = intervals(batch.len(), &v, boot, |idx| {
        let (bi, bs): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (inv[i], steps[i])).unzip();
        hyperbola(&bi, &bs)
    });
    Ok(BcritAtLoss { target_loss, s_min: est[0], e_min: est[1], b_crit: est[2], points: batch.len() })
}

/// B_crit(L) = B*/L^(1/α_B).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BcritLaw {
    /// Tokens.
    pub b_star: Estimate,
    pub alpha_b: Estimate,
    /// On log B_crit.
    pub r2: f64,
    pub points: usize,
    /// The target losses the law was fitted on.
    pub loss_range: FitRange,
}

impl BcritLaw {
    pub fn predict(&self, loss: f64) -> f64 {
        self.b_star.value / loss.powf(1.0 / self.alpha_b.value)
    }

    /// B_crit at `loss` held inside the losses it was fitted over: a power law with a small α_B
    /// runs off by orders of magnitude a little beyond them (eq. 5.4-5.5 conversions use this).
    pub fn predict_within(&self, loss: f64) -> f64 {
        self.predict(loss.clamp(self.loss_range.lo, self.loss_range.hi))
    }
}

fn bcrit_line(ll: &[f64], lb: &[f64]) -> Option<Vec<f64>> {
    let (a, slope) = linear(ll, lb)?;
    (slope < 0.0).then(|| vec![a.exp(), -1.0 / slope])
}

/// Fits B_crit(L) = B*/L^(1/α_B) to (loss, B_crit) pairs.
pub fn fit_bcrit_law(loss: &[f64], b_crit: &[f64], boot: &Bootstrap) -> Result<BcritLaw> {
    const LAW: Law = Law::BCritL;
    if loss.len() != b_crit.len() || loss.len() < 3 {
        return Err(LawsError::TooFewPoints { law: LAW, got: loss.len().min(b_crit.len()), need: 3 });
    }
    check(LAW, "loss", loss)?;
    check(LAW, "B_crit", b_crit)?;
    let ll: Vec<f64> = loss.iter().map(|v| v.ln()).collect();
    let lb: Vec<f64> = b_crit.iter().map(|v| v.ln()).collect();
    let v = bcrit_line(&ll, &lb)
        .ok_or_else(|| LawsError::NoSolution { law: LAW, message: "B_crit does not grow as the loss falls".into() })?;
    let est = intervals(loss.len(), &v, boot, |idx| {
        let (a, b): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (ll[i], lb[i])).unzip();
        bcrit_line(&a, &b)
    });
    let mut out =
        BcritLaw { b_star: est[0], alpha_b: est[1], r2: 0.0, points: loss.len(), loss_range: FitRange::of(loss) };
    let pred: Vec<f64> = loss.iter().map(|&l| out.predict(l).ln()).collect();
    out.r2 = r_squared(&lb, &pred);
    Ok(out)
}

/// Kaplan eq. 5.4: the steps the run would need at B ≪ B_crit.
pub fn s_min(steps: f64, batch: f64, b_crit: f64) -> f64 {
    steps / (1.0 + b_crit / batch)
}

/// Kaplan eq. 5.5: the compute the run would need at B ≪ B_crit.
pub fn c_min(compute: f64, batch: f64, b_crit: f64) -> f64 {
    compute / (1.0 + batch / b_crit)
}
