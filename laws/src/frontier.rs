//! The compute-efficient frontier: the lower envelope of loss-vs-compute curves across model
//! sizes, L(C_min) fitted to it, N_opt ∝ C^a from which size holds the envelope, and the
//! IsoFLOP view (loss against N at fixed compute, a parabola in log N).
use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate, intervals};
use crate::error::{LawsError, Result};
use crate::form::Floor;
use crate::optimize::linear;
use crate::power::{PowerLaw, check, fit_power_law};

/// One run's curve: its N and (compute, loss) points in training order.
#[derive(Debug, Clone)]
pub struct ComputeCurve {
    pub n: f64,
    pub points: Vec<(f64, f64)>,
}

/// A point of the envelope.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct FrontierPoint {
    pub compute: f64,
    pub loss: f64,
    pub n_opt: f64,
}

/// Loss against N at one compute budget.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct IsoFlop {
    pub compute: f64,
    pub profile: Vec<(f64, f64)>,
    /// Vertex of the parabola in log N, when it opens upward and lies within the sizes measured.
    pub n_opt: Option<f64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Frontier {
    pub envelope: Vec<FrontierPoint>,
    pub l_cmin: PowerLaw,
    /// N_opt = k·C^a.
    pub n_opt_exponent: Estimate,
    pub n_opt_coeff: Estimate,
    pub isoflops: Vec<IsoFlop>,
}

/// Loss of a curve at compute `c` (running minimum, log–log interpolation); None outside it.
pub fn loss_at(points: &[(f64, f64)], c: f64) -> Option<f64> {
    let mut best = f64::INFINITY;
    let mut prev: Option<(f64, f64)> = None;
    for &(pc, pl) in points {
        if !(pl.is_finite() && pc > 0.0) {
            continue;
        }
        best = best.min(pl);
        if pc >= c {
            return match prev {
                Some((qc, ql)) if pc > qc => {
                    let t = (c.ln() - qc.ln()) / (pc.ln() - qc.ln());
                    Some((ql.ln() + t * (best.ln() - ql.ln())).exp())
                }
                _ => (pc == c).then_some(best),
            };
        }
        prev = Some((pc, best));
    }
    None
}

fn parabola_vertex(u: &[f64], l: &[f64]) -> Option<f64> {
    // Normal equations of l = a + b u + c u², by Cramer's rule.
    let n = u.len() as f64;
    let s = |k: i32| u.iter().map(|x| x.powi(k)).sum::<f64>();
    let t = |k: i32| u.iter().zip(l).map(|(x, y)| x.powi(k) * y).sum::<f64>();
    let m = [[n, s(1), s(2)], [s(1), s(2), s(3)], [s(2), s(3), s(4)]];
    let r = [t(0), t(1), t(2)];
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&m);
    if d.abs() < 1e-300 {
        return None;
    }
    let col = |k: usize| {
        let mut mk = m;
        for (i, row) in mk.iter_mut().enumerate() {
            row[k] = r[i];
        }
        det(&mk) / d
    };
    let (b, c) = (col(1), col(2));
    (c > 0.0).then(|| -b / (2.0 * c))
}

/// Builds the envelope on `grid` log-spaced budgets and fits L(C_min) (with an irreducible
/// term as `floor` says) and N_opt ∝ C^a to it.
pub fn fit_frontier(curves: &[ComputeCurve], grid: usize, floor: Floor, boot: &Bootstrap) -> Result<Frontier> {
    const LAW: crate::Law = crate::Law::Frontier;
    if curves.len() < 2 {
        return Err(LawsError::TooFewPoints { law: LAW, got: curves.len(), need: 2 });
    }
    check(LAW, "N", &curves.iter().map(|c| c.n).collect::<Vec<_>>())?;
    let starts = curves.iter().filter_map(|c| c.points.iter().map(|p| p.0).find(|&x| x > 0.0));
    let ends = curves.iter().filter_map(|c| c.points.last().map(|p| p.0));
    let lo = starts.fold(f64::INFINITY, f64::min);
    let hi = ends.fold(0.0, f64::max);
    if !(lo.is_finite() && hi > lo) {
        return Err(LawsError::NoSolution { law: LAW, message: "curves cover no range of compute".into() });
    }
    let budget = |k: usize, m: usize| (lo.ln() + (hi.ln() - lo.ln()) * k as f64 / (m - 1).max(1) as f64).exp();
    let mut envelope = Vec::new();
    for k in 0..grid.max(2) {
        let c = budget(k, grid.max(2));
        let best =
            curves.iter().filter_map(|cv| loss_at(&cv.points, c).map(|l| (l, cv.n))).min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((loss, n_opt)) = best {
            envelope.push(FrontierPoint { compute: c, loss, n_opt });
        }
    }
    let cs: Vec<f64> = envelope.iter().map(|p| p.compute).collect();
    let ls: Vec<f64> = envelope.iter().map(|p| p.loss).collect();
    let l_cmin = fit_power_law(crate::Law::CMin, &cs, &ls, floor, boot)?;
    let lc: Vec<f64> = cs.iter().map(|c| c.ln()).collect();
    let ln: Vec<f64> = envelope.iter().map(|p| p.n_opt.ln()).collect();
    let line = |x: &[f64], y: &[f64]| linear(x, y).map(|(a, b)| vec![b, a.exp()]);
    let v = line(&lc, &ln).ok_or_else(|| LawsError::NoSolution { law: LAW, message: "degenerate envelope".into() })?;
    let est = intervals(lc.len(), &v, boot, |idx| {
        let (x, y): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (lc[i], ln[i])).unzip();
        line(&x, &y)
    });
    let isoflops = (1..=4)
        .map(|k| {
            let c = budget(k, 5);
            let profile: Vec<(f64, f64)> =
                curves.iter().filter_map(|cv| loss_at(&cv.points, c).map(|l| (cv.n, l))).collect();
            // A vertex outside the sizes measured is an extrapolation of a parabola, not an optimum.
            let n_opt = (profile.len() >= 3)
                .then(|| {
                    let (u, l): (Vec<f64>, Vec<f64>) = profile.iter().map(|p| (p.0.ln(), p.1)).unzip();
                    let (lo, hi) = u.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                    parabola_vertex(&u, &l).filter(|v| (lo..=hi).contains(v)).map(f64::exp)
                })
                .flatten();
            IsoFlop { compute: c, profile, n_opt }
        })
        .collect();
    Ok(Frontier { envelope, l_cmin, n_opt_exponent: est[0], n_opt_coeff: est[1], isoflops })
}
