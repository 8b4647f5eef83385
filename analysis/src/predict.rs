//! What the fitted laws say beyond the data: predictions at given N, D, C or S, the
//! compute-optimal allocation for a budget, and a warning wherever either reaches beyond the
//! range a law was fitted over.
use std::collections::BTreeMap;

use ladder_laws::{Estimate, FitRange, Law, chinchilla_interval, compute_optimal};
use serde::Serialize;

use crate::error::{AnalysisError, Result};
use crate::report::Report;

/// A number as reports print it.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else if v.fract() == 0.0 {
        // A count or a batch size: 1024, not 1024.0000.
        format!("{v:.0}")
    } else {
        // Four significant digits: 0.3470, 3.312, 331.2.
        let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// A fitted range as reports print it.
pub fn span(r: &FitRange) -> String {
    format!("[{}, {}]", num(r.lo), num(r.hi))
}

/// A warning when `x` lies outside the range `law` was fitted over.
fn beyond(warnings: &mut Vec<String>, law: Law, var: &str, x: f64, r: &FitRange) {
    if let Some(dec) = r.decades_beyond(x) {
        let side = if x > r.hi { "above" } else { "below" };
        warnings.push(format!(
            "{law}: {var} = {} is {dec:.2} decades {side} the fitted range {}; an extrapolation",
            num(x),
            span(r)
        ));
    }
}

/// Extrapolation warnings for `--predict` at the given variables.
pub fn predict_warnings(r: &Report, spec: &str) -> Result<Vec<String>> {
    let at = parse_at(spec)?;
    let (n, d, c, s) = (at.get("N"), at.get("D"), at.get("C"), at.get("S"));
    let mut w = Vec::new();
    if let (Some(f), Some(&n)) = (&r.l_n, n) {
        beyond(&mut w, Law::N, "N", n, &f.x_range);
    }
    if let (Some(f), Some(&d)) = (&r.l_d, d) {
        beyond(&mut w, Law::D, "D", d, &f.x_range);
    }
    if let (Some(f), Some(&n), Some(&d)) = (&r.l_nd, n, d) {
        beyond(&mut w, Law::ND, "N", n, &f.n_range);
        beyond(&mut w, Law::ND, "D", d, &f.x2_range);
    }
    if let (Some(f), Some(&n), Some(&s)) = (&r.l_ns, n, s) {
        beyond(&mut w, Law::NS, "N", n, &f.n_range);
        beyond(&mut w, Law::NS, "S", s, &f.x2_range);
    }
    if let (Some(f), Some(&c)) = (&r.frontier, c) {
        beyond(&mut w, Law::CMin, "C", c, &f.l_cmin.x_range);
    }
    if let (Some(ch), Some(&n), Some(&d)) = (&r.chinchilla, n, d) {
        beyond(&mut w, Law::Chinchilla, "N", n, &ch.fit.n_range);
        beyond(&mut w, Law::Chinchilla, "D", d, &ch.fit.d_range);
    }
    Ok(w)
}

/// Extrapolation warnings for a `--budget` allocation.
pub fn budget_warnings(r: &Report, a: &Allocation) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(ch) = &r.chinchilla {
        beyond(&mut w, Law::Chinchilla, "N", a.n, &ch.fit.n_range);
        beyond(&mut w, Law::Chinchilla, "D", a.d, &ch.fit.d_range);
    } else if let Some(fr) = &r.frontier {
        beyond(&mut w, Law::CMin, "C", a.compute, &fr.l_cmin.x_range);
    }
    if let (Some(b), Some(l)) = (&r.bcrit_law, a.loss) {
        beyond(&mut w, Law::BCritL, "L", l, &b.loss_range);
    }
    w
}

fn parse_at(spec: &str) -> Result<BTreeMap<String, f64>> {
    let mut at: BTreeMap<String, f64> = BTreeMap::new();
    for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| AnalysisError::input("--predict", format!("{part:?}: expected KEY=VALUE, e.g. N=1e9")))?;
        let key = k.trim().to_ascii_uppercase();
        if !["N", "D", "C", "S"].contains(&key.as_str()) {
            return Err(AnalysisError::input("--predict", format!("{k:?}: the keys are N, D, C and S")));
        }
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| AnalysisError::input("--predict", format!("{part:?}: {v:?} is not a number")))?;
        if !(v.is_finite() && v > 0.0) {
            return Err(AnalysisError::input("--predict", format!("{part:?}: must be positive")));
        }
        at.insert(key, v);
    }
    Ok(at)
}

/// `--predict N=…,D=…`: each fitted law evaluated there, with its 95% prediction interval (the
/// bootstrap's spread of the law plus the residual scatter of a run about it; NaN ends where the
/// fit had no resamples).
pub fn predict(r: &Report, spec: &str) -> Result<BTreeMap<Law, Estimate>> {
    let out = evaluate(r, &parse_at(spec)?);
    if out.is_empty() {
        return Err(AnalysisError::NoFit(format!("no fitted law takes the variables given in --predict {spec:?}")));
    }
    Ok(out)
}

/// A prediction as it is stored: its interval's ends None where the fit had no resamples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Prediction {
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// Each fitted law evaluated at `at` (keys N, D, C, S), with its 95% prediction interval.
pub fn predict_at(r: &Report, at: &BTreeMap<String, f64>) -> Result<BTreeMap<Law, Prediction>> {
    let finite = |v: f64| v.is_finite().then_some(v);
    let out: BTreeMap<Law, Prediction> = evaluate(r, at)
        .into_iter()
        .filter(|(_, e)| e.value.is_finite())
        .map(|(law, e)| (law, Prediction { value: e.value, lo: finite(e.lo), hi: finite(e.hi) }))
        .collect();
    if out.is_empty() {
        return Err(AnalysisError::NoFit("no fitted law takes the target's N, D, C or S".into()));
    }
    Ok(out)
}

fn evaluate(r: &Report, at: &BTreeMap<String, f64>) -> BTreeMap<Law, Estimate> {
    let mut out = BTreeMap::new();
    let mut put = |law: Law, value: f64, (lo, hi): (f64, f64)| {
        out.insert(law, Estimate { value, lo, hi });
    };
    let (n, d, c, s) = (at.get("N"), at.get("D"), at.get("C"), at.get("S"));
    if let (Some(f), Some(&n)) = (&r.l_n, n) {
        put(Law::N, f.predict(n), f.interval(n));
    }
    if let (Some(f), Some(&d)) = (&r.l_d, d) {
        put(Law::D, f.predict(d), f.interval(d));
    }
    if let (Some(f), Some(&n), Some(&d)) = (&r.l_nd, n, d) {
        put(Law::ND, f.predict(n, d), f.interval(n, d));
    }
    if let (Some(f), Some(&n), Some(&s)) = (&r.l_ns, n, s) {
        put(Law::NS, f.predict(n, s), f.interval(n, s));
    }
    if let (Some(f), Some(&c)) = (&r.frontier, c) {
        put(Law::CMin, f.l_cmin.predict(c), f.l_cmin.interval(c));
    }
    if let (Some(ch), Some(&n), Some(&d)) = (&r.chinchilla, n, d) {
        put(Law::Chinchilla, ch.fit.predict(n, d), chinchilla_interval(&ch.fit, &ch.draws, n, d));
    }
    out
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Allocation {
    pub compute: f64,
    pub n: f64,
    pub d: f64,
    pub loss: Option<f64>,
    /// B_crit at that loss, tokens.
    pub batch_tokens: Option<f64>,
    /// The law it comes from: Chinchilla, or the compute frontier.
    pub from: Law,
}

/// `--budget C`: compute-optimal N and D (Chinchilla's closed form when fitted, else the
/// frontier's N_opt ∝ C^a) and B = B_crit at the loss expected there.
pub fn budget(r: &Report, c: f64) -> Result<Allocation> {
    if !(c.is_finite() && c > 0.0) {
        return Err(AnalysisError::input("--budget", format!("{c} must be a positive number of FLOPs")));
    }
    let (n, d, loss, from) = if let Some(ch) = &r.chinchilla {
        let (n, d) = compute_optimal(&ch.fit, c);
        (n, d, Some(ch.fit.predict(n, d)), Law::Chinchilla)
    } else if let Some(fr) = &r.frontier {
        let n = fr.n_opt_coeff.value * c.powf(fr.n_opt_exponent.value);
        (n, c / (6.0 * n), Some(fr.l_cmin.predict(c)), Law::Frontier)
    } else {
        return Err(AnalysisError::NoFit("--budget needs a Chinchilla fit or a compute frontier".into()));
    };
    let batch_tokens = match (&r.bcrit_law, loss) {
        (Some(b), Some(l)) => Some(b.predict(l)),
        _ => None,
    };
    Ok(Allocation { compute: c, n, d, loss, batch_tokens, from })
}
