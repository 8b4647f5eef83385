//! Prediction bands of the two-variable laws: from the bootstrap resamples' constants, they
//! cover the truth inside the data and widen when extrapolated a decade beyond it.
use ladder_laws::*;

mod common;
use common::{kaplan_grid, kaplan_l_nd, logspace, noisy_grid};

/// Relative width of a band around `at`.
fn width(band: (f64, f64), at: f64) -> f64 {
    (band.1 - band.0) / at
}

#[test]
fn kaplan_l_nd_band_covers_inside_and_widens_beyond() {
    let (ns, ds, ls) = kaplan_grid(&mut SplitMix64::new(21));
    let fit = fit_l_nd(
        &ns,
        &ds,
        &ls,
        Floor::Without,
        &Bootstrap { resamples: 100, level: 0.95, seed: 3, ..Bootstrap::default() },
    )
    .expect("fit");
    assert!(fit.draws.len() >= 50 && fit.draws.iter().all(|c| c.len() == 4), "{} draws", fit.draws.len());
    let (n_in, d_in) = (3e7, 3e8);
    let inside = fit.band(n_in, d_in);
    let truth = kaplan_l_nd(n_in, d_in);
    assert!(inside.0 <= truth && truth <= inside.1, "{inside:?} vs {truth}");
    assert!(inside.0 <= fit.predict(n_in, d_in) && fit.predict(n_in, d_in) <= inside.1);
    let (n_out, d_out) = (1e10, 1e11);
    assert!((fit.n_range.decades_beyond(n_out).expect("beyond") - 1.0).abs() < 1e-12);
    let beyond = fit.band(n_out, d_out);
    let (w_in, w_out) = (width(inside, fit.predict(n_in, d_in)), width(beyond, fit.predict(n_out, d_out)));
    eprintln!("L(N,D) band: {w_in:.5} inside, {w_out:.5} a decade beyond");
    assert!(w_in > 0.0 && w_in < w_out, "{w_in} vs {w_out}");
}

#[test]
fn kaplan_l_ns_has_a_band_too() {
    let (an, as_, nc, sc) = published::L_NS;
    let truth = |n: f64, s: f64| (nc / n).powf(an) + (sc / s).powf(as_);
    let mut rng = SplitMix64::new(22);
    let (ns, ss, ls) = noisy_grid(&mut rng, &logspace(1e6, 1e9, 6), &logspace(1e3, 1e5, 6), truth);
    let fit = fit_l_ns(&ns, &ss, &ls, &Bootstrap { resamples: 60, level: 0.95, seed: 4, ..Bootstrap::default() })
        .expect("fit");
    let inside = fit.band(3e7, 1e4);
    assert!(inside.0 <= truth(3e7, 1e4) && truth(3e7, 1e4) <= inside.1, "{inside:?}");
    let beyond = fit.band(1e10, 1e6);
    assert!(width(inside, fit.predict(3e7, 1e4)) < width(beyond, fit.predict(1e10, 1e6)));
    // No resamples, no band.
    let bare = TwoVarLaw { draws: Vec::new(), ..fit };
    assert!(bare.band(3e7, 1e4).0.is_nan() && bare.band(3e7, 1e4).1.is_nan());
}

#[test]
fn chinchilla_band_covers_inside_and_widens_beyond() {
    let (e, a, b, alpha, beta) = (1.69, 406.4, 410.7, 0.34, 0.28);
    let truth = |n: f64, d: f64| e + a / n.powf(alpha) + b / d.powf(beta);
    let mut rng = SplitMix64::new(23);
    let mut runs = Vec::new();
    for &n in &logspace(1e7, 1e10, 7) {
        for &d in &logspace(1e9, 1e12, 7) {
            runs.push(Run { n, d, loss: truth(n, d) * (0.01 * rng.normal()).exp() });
        }
    }
    // A coarse grid of starts: the data are clean enough for any start near the truth.
    let opts = ChinchillaOptions {
        alpha_grid: vec![0.5],
        beta_grid: vec![0.5],
        e_grid: vec![0.0, 0.5],
        a_grid: vec![5.0, 10.0],
        b_grid: vec![5.0, 10.0],
        ..Default::default()
    };
    let fit = fit_chinchilla(&runs, &opts).expect("fit");
    let boot = Bootstrap { resamples: 100, level: 0.95, seed: 5, ..Bootstrap::default() };
    let (est, draws) = chinchilla_bootstrap(&runs, &fit, &boot);
    assert!(draws.len() >= 50, "{} draws", draws.len());
    // The one-pass bootstrap agrees with the separate entry points (same seed, same resamples).
    assert_eq!(est, chinchilla_intervals(&runs, &fit, &boot));
    assert_eq!(draws, chinchilla_draws(&runs, &fit, &boot));
    assert!(draws.iter().all(|f| f.n_range == fit.n_range && f.d_range == fit.d_range && f.runs == runs.len()));
    // The draws are what the intervals were taken from.
    let lo_alpha = draws.iter().map(|f| f.alpha).fold(f64::INFINITY, f64::min);
    assert!(lo_alpha <= est[3].lo && est[3].lo < est[3].hi, "{:?}", est[3]);
    let (n_in, d_in) = (3e8, 3e10);
    let inside = chinchilla_band(&draws, n_in, d_in);
    assert!(inside.0 <= truth(n_in, d_in) && truth(n_in, d_in) <= inside.1, "{inside:?} vs {}", truth(n_in, d_in));
    let (n_out, d_out) = (1e11, 1e13);
    let beyond = chinchilla_band(&draws, n_out, d_out);
    let (w_in, w_out) = (width(inside, fit.predict(n_in, d_in)), width(beyond, fit.predict(n_out, d_out)));
    eprintln!("Chinchilla band: {w_in:.5} inside, {w_out:.5} a decade beyond");
    assert!(w_in > 0.0 && w_in < w_out, "{w_in} vs {w_out}");
    let none = chinchilla_band(&[], n_in, d_in);
    assert!(none.0.is_nan() && none.1.is_nan());
}
