//! What the law tests share: log-spaced axes, 1% log-normal noise, relative error, a noisy
//! two-variable grid, and Kaplan's L(N, D) on its own grid. Each test file uses its own subset.
#![allow(dead_code)]
use ladder_laws::{SplitMix64, published};

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

/// Kaplan's eq. 1.5 at his published constants.
pub fn kaplan_l_nd(n: f64, d: f64) -> f64 {
    let (an, ad, nc, dc) = published::L_ND;
    ((nc / n).powf(an / ad) + dc / d).powf(ad)
}

/// [`kaplan_l_nd`] on N in [1e6, 1e9] × D in [1e7, 1e10], six each, under 1% noise.
pub fn kaplan_grid(rng: &mut SplitMix64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    noisy_grid(rng, &logspace(1e6, 1e9, 6), &logspace(1e7, 1e10, 6), kaplan_l_nd)
}
