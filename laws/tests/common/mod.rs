//! What the law tests share: log-spaced axes, 1% log-normal noise, relative error, and a noisy
//! two-variable grid. Each test file uses its own subset.
#![allow(dead_code)]
use ladder_laws::SplitMix64;

pub fn logspace(lo: f64, hi: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (k - 1) as f64).exp()).collect()
}

/// `v` times 1% log-normal noise (σ = 0.01).
pub fn noisy(rng: &mut SplitMix64, v: f64) -> f64 {
    v * (0.01 * rng.normal()).exp()
}

pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Every (n, x) of the two axes, n outer, with `law(n, x)` under 1% noise: (N, x, loss).
pub fn noisy_grid(
    rng: &mut SplitMix64,
    ns: &[f64],
    xs: &[f64],
    law: impl Fn(f64, f64) -> f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut n_out, mut x_out, mut loss) = (vec![], vec![], vec![]);
    for &n in ns {
        for &x in xs {
            n_out.push(n);
            x_out.push(x);
            loss.push(noisy(rng, law(n, x)));
        }
    }
    (n_out, x_out, loss)
}
