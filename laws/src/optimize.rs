//! Multi-start Nelder–Mead (argmin) over a closure: the optimiser behind the Kaplan-form fits.
use argmin::core::{CostFunction, Error as ArgminError, Executor, State};
use argmin::solver::neldermead::NelderMead;

struct Problem<'a> {
    f: &'a (dyn Fn(&[f64]) -> f64 + Sync),
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<f64, ArgminError> {
        let v = (self.f)(p);
        Ok(if v.is_finite() { v } else { f64::MAX })
    }
}

fn simplex(start: &[f64], scale: &[f64]) -> Vec<Vec<f64>> {
    let mut s = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut v = start.to_vec();
        v[i] += scale[i];
        s.push(v);
    }
    s
}

fn one(f: &(dyn Fn(&[f64]) -> f64 + Sync), start: &[f64], scale: &[f64], iters: u64) -> Option<(Vec<f64>, f64)> {
    let solver = NelderMead::new(simplex(start, scale)).with_sd_tolerance(1e-13).ok()?;
    let res = Executor::new(Problem { f }, solver).configure(|s| s.max_iters(iters)).run().ok()?;
    let state = res.state();
    let best = state.get_best_param()?.clone();
    let cost = state.get_best_cost();
    (cost.is_finite() && cost < f64::MAX && best.iter().all(|v| v.is_finite())).then_some((best, cost))
}

/// Minimises `f` from every start; each result is polished by a restart at its own optimum
/// (Nelder–Mead can stall on a degenerate simplex). Returns the best parameters and cost.
pub fn minimise(
    f: &(dyn Fn(&[f64]) -> f64 + Sync),
    starts: &[Vec<f64>],
    scale: &[f64],
    iters: u64,
) -> Option<(Vec<f64>, f64)> {
    let best = starts.iter().filter_map(|s| one(f, s, scale, iters)).min_by(|a, b| a.1.total_cmp(&b.1))?;
    let small: Vec<f64> = scale.iter().map(|s| s * 0.05).collect();
    match one(f, &best.0, &small, iters) {
        Some(p) if p.1 <= best.1 => Some(p),
        _ => Some(best),
    }
}

/// Ordinary least squares y = a + b·x; returns (a, b).
pub fn linear(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// ln(e^a + e^b), without overflow.
pub(crate) fn lse(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// 1 − SS_res/SS_tot.
pub fn r_squared(observed: &[f64], predicted: &[f64]) -> f64 {
    let n = observed.len() as f64;
    let mean = observed.iter().sum::<f64>() / n;
    let tot: f64 = observed.iter().map(|o| (o - mean).powi(2)).sum();
    let res: f64 = observed.iter().zip(predicted).map(|(o, p)| (o - p).powi(2)).sum();
    if tot == 0.0 { if res == 0.0 { 1.0 } else { 0.0 } } else { 1.0 - res / tot }
}
