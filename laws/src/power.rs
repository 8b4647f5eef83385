//! One-variable power laws: L(N) = (N_c/N)^α_N, L(D) = (D_c/D)^α_D, L(C_min) = (C_c/C)^α_C,
//! each with an optional irreducible term E (L = E + (x_c/x)^α), kept or not by [`Floor`].
//! Fitted by least squares on log L.
use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate, Tally, central, resample};
use crate::error::{LawsError, Result};
use crate::form::{Floor, FormChoice, choose};
use crate::optimize::{linear, lse, minimise, r_squared};
use crate::range::FitRange;
use crate::residual::{WorstPoint, worst_point};

/// A fitted power law with bootstrap intervals.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PowerLaw {
    pub law: crate::Law,
    pub alpha: Estimate,
    /// x_c: the scale at which the reducible term equals 1.
    pub x_c: Estimate,
    /// Irreducible loss, when fitted.
    pub e: Option<Estimate>,
    /// Both forms' AICc, when [`Floor::Auto`] chose between them.
    #[serde(default)]
    pub choice: Option<FormChoice>,
    /// On log L.
    pub r2: f64,
    /// The fitted point it misses most.
    #[serde(default)]
    pub worst: Option<WorstPoint>,
    pub points: usize,
    /// The x the law was fitted on.
    pub x_range: FitRange,
    /// The residual standard deviation on log L, for prediction intervals.
    #[serde(default = "crate::interval::unknown")]
    pub resid_sd: f64,
    /// How the bootstrap went: resamples, failures, the points drawn.
    #[serde(default)]
    pub tally: Tally,
    /// Bootstrap resamples' constants (α, x_c, E; E = 0 where a resample chose the form without),
    /// for the prediction band.
    #[serde(skip)]
    pub draws: Vec<Vec<f64>>,
}

fn eval(p: &[f64], x: f64) -> f64 {
    p.get(2).copied().unwrap_or(0.0) + (p[1] / x).powf(p[0])
}

impl PowerLaw {
    /// A law from given constants (e.g. published ones): no intervals, no resamples, no range.
    pub fn new_point(law: crate::Law, alpha: f64, x_c: f64, e: Option<f64>) -> PowerLaw {
        PowerLaw {
            law,
            alpha: Estimate::point(alpha),
            x_c: Estimate::point(x_c),
            e: e.map(Estimate::point),
            choice: None,
            r2: f64::NAN,
            worst: None,
            points: 0,
            x_range: FitRange::of(&[]),
            resid_sd: f64::NAN,
            tally: Tally::default(),
            draws: Vec::new(),
        }
    }

    pub fn predict(&self, x: f64) -> f64 {
        self.e.map_or(0.0, |e| e.value) + (self.x_c.value / x).powf(self.alpha.value)
    }

    /// The 95% bootstrap band of the prediction at `x` (NaN without resamples).
    pub fn band(&self, x: f64) -> (f64, f64) {
        central(self.draws.iter().map(|p| eval(p, x)).collect(), 0.95)
    }

    /// The 95% prediction interval of a run's loss at `x`: the band with the residual scatter
    /// added (NaN without resamples).
    pub fn interval(&self, x: f64) -> (f64, f64) {
        crate::interval::prediction_interval(self.draws.iter().map(|p| eval(p, x)), self.resid_sd, 0.95)
    }
}

pub(crate) fn check(law: crate::Law, field: &'static str, xs: &[f64]) -> Result<()> {
    match xs.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        Some(index) => Err(LawsError::BadPoint { law, index, field, value: xs[index] }),
        None => Ok(()),
    }
}

/// (α, ln x_c) of L = (x_c/x)^α: a line in log–log.
fn pure(lx: &[f64], ll: &[f64]) -> Option<Vec<f64>> {
    let (a, b) = linear(lx, ll)?;
    let alpha = -b;
    (alpha != 0.0).then(|| vec![alpha, a / alpha])
}

fn with_floor(lx: &[f64], ll: &[f64]) -> Option<Vec<f64>> {
    with_floor_from(lx, ll, &floor_starts(lx, ll))
}

/// L = E + (x_c/x)^α by least squares on log L from each of `starts` ([α, ln x_c, ln E]).
fn with_floor_from(lx: &[f64], ll: &[f64], starts: &[Vec<f64>]) -> Option<Vec<f64>> {
    let obj = |p: &[f64]| -> f64 { lx.iter().zip(ll).map(|(x, l)| (log_pred(p, *x) - l).powi(2)).sum() };
    minimise(&obj, starts, &[0.05, 1.0, 0.1], 4000).map(|(p, _)| p)
}

/// A grid of starts: exponents from 0.05 to 1.5, E a share of the lowest loss.
fn floor_starts(lx: &[f64], ll: &[f64]) -> Vec<Vec<f64>> {
    let lmin = ll.iter().copied().fold(f64::INFINITY, f64::min);
    let mid = lx.len() / 2;
    let mut order: Vec<usize> = (0..lx.len()).collect();
    order.sort_by(|&a, &b| lx[a].total_cmp(&lx[b]));
    let (xm, lm) = (lx[order[mid]], ll[order[mid]]);
    let mut starts = Vec::new();
    for alpha in [0.05, 0.1, 0.2, 0.4, 0.8, 1.5] {
        for frac in [0.3, 0.6, 0.85, 0.95] {
            let le = lmin + f64::ln(frac);
            let rest = lm.exp() - le.exp();
            if rest > 0.0 {
                starts.push(vec![alpha, xm + rest.ln() / alpha, le]);
            }
        }
    }
    starts
}

/// log L̂ at ln x: p = [α, ln x_c] or [α, ln x_c, ln E].
fn log_pred(p: &[f64], lx: f64) -> f64 {
    let t = p[0] * (p[1] - lx);
    p.get(2).map_or(t, |&le| lse(t, le))
}

/// The constants and their sum of squared residuals on log L.
fn scored(p: Option<Vec<f64>>, lx: &[f64], ll: &[f64]) -> Option<(Vec<f64>, f64)> {
    let p = p?;
    let sse = lx.iter().zip(ll).map(|(x, l)| (log_pred(&p, *x) - l).powi(2)).sum();
    Some((p, sse))
}

/// Fits L = (x_c/x)^α or L = E + (x_c/x)^α, as `floor` says.
pub fn fit_power_law(law: crate::Law, x: &[f64], loss: &[f64], floor: Floor, boot: &Bootstrap) -> Result<PowerLaw> {
    let need = if floor == Floor::With { 4 } else { 3 };
    if x.len() != loss.len() || x.len() < need {
        return Err(LawsError::TooFewPoints { law, got: x.len().min(loss.len()), need });
    }
    check(law, "x", x)?;
    check(law, "loss", loss)?;
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ll: Vec<f64> = loss.iter().map(|v| v.ln()).collect();
    // The full data's fit with E, made at most once: the choice and the resamples' start share it.
    let with_full = std::cell::OnceCell::new();
    let full_with = || with_full.get_or_init(|| scored(with_floor(&lx, &ll), &lx, &ll)).clone();
    let (p, floor, choice) = choose(floor, x.len(), 2, || scored(pure(&lx, &ll), &lx, &ll), full_with)
        .ok_or_else(|| LawsError::NoSolution { law, message: "degenerate data".into() })?;
    // Constants as [α, x_c, E], E = 0 for the form without: a resample may choose the other form.
    let natural = |p: &[f64]| -> Vec<f64> { vec![p[0], p[1].exp(), p.get(2).map_or(0.0, |le| le.exp())] };
    let value = natural(&p);
    let points = x.len();
    // Under Auto each resample chooses its form again (the choice is part of the estimate); its
    // fit with E starts from the full data's, as a resample's optimum lies near it.
    let mode = if choice.is_some() {
        Floor::Auto
    } else if floor {
        Floor::With
    } else {
        Floor::Without
    };
    let start_with: Vec<Vec<f64>> = match mode {
        Floor::Without => Vec::new(),
        _ => full_with().map(|(p, _)| p).into_iter().collect(),
    };
    let resampled = resample(&boot.units(x), &value, boot, |idx| {
        let (bx, bl): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (lx[i], ll[i])).unzip();
        let fit_with = || scored(with_floor_from(&bx, &bl, &start_with), &bx, &bl);
        let (p, _, _) = choose(mode, points, 2, || scored(pure(&bx, &bl), &bx, &bl), fit_with)?;
        Some(natural(&p))
    });
    let tally = resampled.tally(boot);
    let (est, draws) = (resampled.estimates, resampled.draws);
    let mut out = PowerLaw {
        law,
        alpha: est[0],
        x_c: est[1],
        e: floor.then(|| est[2]),
        choice,
        r2: 0.0,
        worst: None,
        points: x.len(),
        x_range: FitRange::of(x),
        resid_sd: f64::NAN,
        tally,
        draws,
    };
    let predicted: Vec<f64> = x.iter().map(|&v| out.predict(v).ln()).collect();
    out.resid_sd = crate::interval::residual_sd(&ll, &predicted, if floor { 3 } else { 2 });
    out.r2 = r_squared(&ll, &predicted);
    out.worst = worst_point(x.iter().map(|&v| (v, None)), &ll, &predicted);
    Ok(out)
}
