//! Chinchilla's parametric loss L(N, D) = E + A/N^α + B/D^β, fitted as Hoffmann et al. 2022
//! App. D.2 and Besiroglu et al. 2024 do: the Huber loss (δ = 1e-3) of log L against
//! LSE(a − α log N, b − β log D, e), with A, B, E = exp(a), exp(b), exp(e), minimised by L-BFGS
//! from every point of a grid of starts; the best result wins.
use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;

use crate::bootstrap::{Bootstrap, Estimate, Resampled, central, resample, resample_weighted};
use crate::error::{LawsError, Result};
use crate::optimize::r_squared;
use crate::range::FitRange;
use crate::residual::{WorstPoint, worst_point};

const LAW: crate::Law = crate::Law::Chinchilla;

/// One training run: N parameters, D tokens, final loss (nats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub n: f64,
    pub d: f64,
    pub loss: f64,
}

/// The fitted constants and the objective they reach (Huber summed over runs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChinchillaFit {
    pub e: f64,
    pub a: f64,
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
    pub objective: f64,
    pub runs: usize,
    /// The N and D of the runs fitted.
    pub n_range: FitRange,
    pub d_range: FitRange,
    /// On log L, over the runs fitted.
    pub r2: f64,
    /// The fitted run it misses most (a resample's fit carries the full fit's).
    #[serde(default)]
    pub worst: Option<WorstPoint>,
    /// The residual standard deviation on log L over the runs fitted, for prediction intervals.
    #[serde(default = "crate::interval::unknown")]
    pub resid_sd: f64,
}

impl ChinchillaFit {
    pub fn predict(&self, n: f64, d: f64) -> f64 {
        self.e + self.a / n.powf(self.alpha) + self.b / d.powf(self.beta)
    }

    /// L(N, d_lo) − L(N, d_hi): the same at every N, as the form is additive.
    pub fn gain(&self, d_lo: f64, d_hi: f64) -> f64 {
        self.b / d_lo.powf(self.beta) - self.b / d_hi.powf(self.beta)
    }
}

#[derive(Debug, Clone)]
pub struct ChinchillaOptions {
    pub huber_delta: f64,
    /// Starting values of α, β, e, a, b; every combination is tried.
    pub alpha_grid: Vec<f64>,
    pub beta_grid: Vec<f64>,
    pub e_grid: Vec<f64>,
    pub a_grid: Vec<f64>,
    pub b_grid: Vec<f64>,
    pub max_iters: u64,
    /// L-BFGS runs from this many grid points, those with the lowest objective (all when None).
    /// Hoffmann et al. start from every point; on a small, noisy sweep many starts wander off
    /// to E → 0 and spend their whole iteration budget there, so ranking first is much faster.
    pub best_starts: Option<usize>,
}

fn steps(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(|i| lo + step * i as f64).collect()
}

/// The floor of log E (E = 9.4e-14): below it the irreducible term is zero to the fit.
pub const LOG_E_FLOOR: f64 = -30.0;

/// How many of the grid's starts are refined by default; Epoch's replication is unchanged by it
/// (`tests/chinchilla_epoch.rs`).
pub const BEST_STARTS: usize = 64;

impl Default for ChinchillaOptions {
    /// Hoffmann et al.'s grid: α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}.
    fn default() -> Self {
        Self {
            huber_delta: 1e-3,
            alpha_grid: steps(0.0, 2.0, 0.5),
            beta_grid: steps(0.0, 2.0, 0.5),
            e_grid: steps(-1.0, 1.0, 0.5),
            a_grid: steps(0.0, 25.0, 5.0),
            b_grid: steps(0.0, 25.0, 5.0),
            max_iters: 1000,
            best_starts: Some(BEST_STARTS),
        }
    }
}

/// The objective over precomputed logs; parameters are [a, b, e, α, β].
#[derive(Clone)]
struct Objective {
    log_n: Vec<f64>,
    log_d: Vec<f64>,
    log_l: Vec<f64>,
    /// Each run's weight in the objective (a weighted bootstrap's); empty: all 1.
    weight: Vec<f64>,
    delta: f64,
}

impl Objective {
    fn eval(&self, p: &[f64], grad: Option<&mut [f64; 5]>) -> f64 {
        // E below e^-30 is E = 0 to any data: held there, so a fit whose E collapses stops
        // instead of chasing e → −∞ through its whole iteration budget.
        let (a, b, e, alpha, beta) = (p[0], p[1], p[2].max(LOG_E_FLOOR), p[3], p[4]);
        let e_free = p[2] > LOG_E_FLOOR;
        let mut total = 0.0;
        let mut g = [0.0; 5];
        for i in 0..self.log_n.len() {
            let t = [a - alpha * self.log_n[i], b - beta * self.log_d[i], e];
            let m = t[0].max(t[1]).max(t[2]);
            let w = [(t[0] - m).exp(), (t[1] - m).exp(), (t[2] - m).exp()];
            let z = w[0] + w[1] + w[2];
            let r = m + z.ln() - self.log_l[i];
            let (h, dh) = if r.abs() <= self.delta {
                (0.5 * r * r, r)
            } else {
                (self.delta * (r.abs() - 0.5 * self.delta), self.delta * r.signum())
            };
            let wi = self.weight.get(i).copied().unwrap_or(1.0);
            let (h, dh) = (wi * h, wi * dh);
            total += h;
            let (s0, s1, s2) = (w[0] / z, w[1] / z, w[2] / z);
            g[0] += dh * s0;
            g[1] += dh * s1;
            if e_free {
                g[2] += dh * s2;
            }
            g[3] -= dh * s0 * self.log_n[i];
            g[4] -= dh * s1 * self.log_d[i];
        }
        if let Some(out) = grad {
            *out = g;
        }
        total
    }
}

impl CostFunction for Objective {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<f64, ArgminError> {
        Ok(self.eval(p, None))
    }
}

impl Gradient for Objective {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, p: &Self::Param) -> Result<Vec<f64>, ArgminError> {
        let mut g = [0.0; 5];
        self.eval(p, Some(&mut g));
        Ok(g.to_vec())
    }
}

fn minimise(obj: &Objective, start: Vec<f64>, max_iters: u64) -> Option<(Vec<f64>, f64)> {
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-12)
        .ok()?
        .with_tolerance_cost(1e-15)
        .ok()?;
    let res = Executor::new(obj.clone(), solver).configure(|s| s.param(start).max_iters(max_iters)).run().ok()?;
    let state = res.state();
    let cost = state.get_best_cost();
    let best = state.get_best_param()?.clone();
    (cost.is_finite() && best.iter().all(|v| v.is_finite())).then_some((best, cost))
}

/// Fits L = E + A/N^α + B/D^β to `runs` (all of them: exclude outliers before calling).
pub fn fit_chinchilla(runs: &[Run], opts: &ChinchillaOptions) -> Result<ChinchillaFit> {
    fit_weighted(runs, &[], opts)
}

/// [`fit_chinchilla`] with a weight per run in the objective (empty: all 1).
fn fit_weighted(runs: &[Run], weight: &[f64], opts: &ChinchillaOptions) -> Result<ChinchillaFit> {
    if runs.len() < 6 {
        return Err(LawsError::TooFewPoints { law: LAW, got: runs.len(), need: 6 });
    }
    for (index, r) in runs.iter().enumerate() {
        for (field, value) in [("N", r.n), ("D", r.d), ("loss", r.loss)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(LawsError::BadPoint { law: LAW, index, field, value });
            }
        }
    }
    let obj = Objective {
        log_n: runs.iter().map(|r| r.n.ln()).collect(),
        log_d: runs.iter().map(|r| r.d.ln()).collect(),
        log_l: runs.iter().map(|r| r.loss.ln()).collect(),
        weight: weight.to_vec(),
        delta: opts.huber_delta,
    };
    let mut starts = Vec::new();
    for &alpha in &opts.alpha_grid {
        for &beta in &opts.beta_grid {
            for &e in &opts.e_grid {
                for &a in &opts.a_grid {
                    for &b in &opts.b_grid {
                        starts.push(vec![a, b, e, alpha, beta]);
                    }
                }
            }
        }
    }
    if let Some(k) = opts.best_starts
        && k < starts.len()
    {
        let mut ranked: Vec<(f64, Vec<f64>)> = starts.into_iter().map(|p| (obj.eval(&p, None), p)).collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        starts = ranked.into_iter().take(k.max(1)).map(|(_, p)| p).collect();
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(starts.len().max(1));
    let chunk = starts.len().div_ceil(threads);
    let best = starts
        .par_chunks(chunk)
        .filter_map(|part| {
            part.iter().filter_map(|s| minimise(&obj, s.clone(), opts.max_iters)).min_by(|x, y| x.1.total_cmp(&y.1))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .min_by(|x, y| x.1.total_cmp(&y.1));
    let (p, objective) =
        best.ok_or_else(|| LawsError::NoSolution { law: LAW, message: "no start converged".into() })?;
    let mut fit = ChinchillaFit {
        a: p[0].exp(),
        b: p[1].exp(),
        e: p[2].max(LOG_E_FLOOR).exp(),
        alpha: p[3],
        beta: p[4],
        objective,
        runs: runs.len(),
        n_range: FitRange::of(&runs.iter().map(|r| r.n).collect::<Vec<_>>()),
        d_range: FitRange::of(&runs.iter().map(|r| r.d).collect::<Vec<_>>()),
        r2: f64::NAN,
        worst: None,
        resid_sd: f64::NAN,
    };
    let predicted: Vec<f64> = runs.iter().map(|r| fit.predict(r.n, r.d).ln()).collect();
    fit.resid_sd = crate::interval::residual_sd(&obj.log_l, &predicted, 5);
    fit.r2 = r_squared(&obj.log_l, &predicted);
    fit.worst = worst_point(runs.iter().map(|r| (r.n, Some(r.d))), &obj.log_l, &predicted);
    Ok(fit)
}

/// Bootstrap intervals on E, A, B, α, β: each resample is refitted by L-BFGS from the full
/// fit's optimum (the grid search is for the full data; resamples sit near it).
pub fn chinchilla_intervals(runs: &[Run], fit: &ChinchillaFit, boot: &Bootstrap) -> [Estimate; 5] {
    chinchilla_bootstrap(runs, fit, boot).0
}

/// The successful resamples' fits of [`chinchilla_intervals`], for [`chinchilla_band`]. Each
/// keeps its own objective and R² but carries the full fit's ranges (the data it drew from).
pub fn chinchilla_draws(runs: &[Run], fit: &ChinchillaFit, boot: &Bootstrap) -> Vec<ChinchillaFit> {
    chinchilla_bootstrap(runs, fit, boot).1
}

/// [`chinchilla_intervals`] and [`chinchilla_draws`] from one set of resamples (half the work
/// of calling both).
pub fn chinchilla_bootstrap(
    runs: &[Run],
    fit: &ChinchillaFit,
    boot: &Bootstrap,
) -> ([Estimate; 5], Vec<ChinchillaFit>) {
    let (est, fits, _) = chinchilla_resampled(runs, fit, boot);
    (est, fits)
}

/// [`chinchilla_bootstrap`], with the resampling's tally (failures, units drawn). With
/// [`crate::Unit::Sizes`] every resample keeps every run and weighs each size's runs together
/// ([`resample_weighted`]); with [`crate::Unit::Points`] it draws runs with replacement.
pub fn chinchilla_resampled(
    runs: &[Run],
    fit: &ChinchillaFit,
    boot: &Bootstrap,
) -> ([Estimate; 5], Vec<ChinchillaFit>, crate::Tally) {
    let opts = ChinchillaOptions {
        alpha_grid: vec![fit.alpha],
        beta_grid: vec![fit.beta],
        e_grid: vec![fit.e.ln()],
        a_grid: vec![fit.a.ln()],
        b_grid: vec![fit.b.ln()],
        ..ChinchillaOptions::default()
    };
    // The last two columns (objective, R²) ride along so that each draw is a whole fit.
    let value = [fit.e, fit.a, fit.b, fit.alpha, fit.beta, fit.objective, fit.r2];
    let ns: Vec<f64> = runs.iter().map(|r| r.n).collect();
    let refit = |sample: &[Run]| {
        fit_chinchilla(sample, &opts).ok().map(|f| vec![f.e, f.a, f.b, f.alpha, f.beta, f.objective, f.r2])
    };
    let resampled: Resampled = match boot.unit {
        crate::Unit::Sizes => resample_weighted(&boot.units(&ns), &value, boot, |w| {
            fit_weighted(runs, w, &opts).ok().map(|f| vec![f.e, f.a, f.b, f.alpha, f.beta, f.objective, f.r2])
        }),
        crate::Unit::Points => resample(&boot.units(&ns), &value, boot, |idx| {
            let sample: Vec<Run> = idx.iter().map(|&i| runs[i]).collect();
            refit(&sample)
        }),
    };
    let tally = resampled.tally(boot);
    let (est, draws) = (resampled.estimates, resampled.draws);
    let fits = draws
        .iter()
        .map(|v| ChinchillaFit {
            e: v[0],
            a: v[1],
            b: v[2],
            alpha: v[3],
            beta: v[4],
            objective: v[5],
            r2: v[6],
            runs: runs.len(),
            ..*fit
        })
        .collect();
    ([est[0], est[1], est[2], est[3], est[4]], fits, tally)
}

/// The 95% band of the resamples' predictions at (N, D) (NaN without resamples).
pub fn chinchilla_band(draws: &[ChinchillaFit], n: f64, d: f64) -> (f64, f64) {
    central(draws.iter().map(|f| f.predict(n, d)).collect(), 0.95)
}

/// The 95% prediction interval of a run's loss at (N, D): the resamples' predictions with the
/// full fit's residual scatter added (NaN without resamples).
pub fn chinchilla_interval(fit: &ChinchillaFit, draws: &[ChinchillaFit], n: f64, d: f64) -> (f64, f64) {
    crate::interval::prediction_interval(draws.iter().map(|f| f.predict(n, d)), fit.resid_sd, 0.95)
}

/// Hoffmann et al. eq. 4: the N and D that minimise L(N, D) under C = 6·N·D.
pub fn compute_optimal(fit: &ChinchillaFit, compute: f64) -> (f64, f64) {
    let g = (fit.alpha * fit.a / (fit.beta * fit.b)).powf(1.0 / (fit.alpha + fit.beta));
    let n = g * (compute / 6.0).powf(fit.beta / (fit.alpha + fit.beta));
    (n, compute / (6.0 * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let obj = Objective {
            log_n: vec![18.0, 20.0, 22.0, 19.5],
            log_d: vec![21.0, 23.0, 24.0, 22.5],
            log_l: vec![1.2, 1.0, 0.8, 0.95],
            weight: vec![1.0, 2.0, 0.5, 1.5],
            delta: 1e-3,
        };
        let p = [6.0, 7.0, 0.5, 0.34, 0.28];
        let mut g = [0.0; 5];
        obj.eval(&p, Some(&mut g));
        for i in 0..5 {
            let h = 1e-6;
            let (mut up, mut dn) = (p, p);
            up[i] += h;
            dn[i] -= h;
            let fd = (obj.eval(&up, None) - obj.eval(&dn, None)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "param {i}: analytic {} vs numeric {fd}", g[i]);
        }
    }
}
