//! `Floor::Auto`: a law keeps an irreducible loss E only where the points bend toward one, by
//! AICc on the points fitted. Data drawn from known constants with 1% log-normal noise.
use ladder_laws::*;

mod common;
use common::{kaplan_grid, logspace, noisy, noisy_grid, rel};

/// Each point's noise is drawn on its own: the points are the units to redraw.
fn boot() -> Bootstrap {
    Bootstrap { resamples: 100, level: 0.95, seed: 11, unit: Unit::Points }
}

#[test]
fn a_one_variable_law_keeps_e_only_where_the_loss_bends() {
    let mut rng = SplitMix64::new(21);
    let d = logspace(1e6, 1e10, 16);
    let bent: Vec<f64> = d.iter().map(|&x| noisy(&mut rng, 1.7 + (1e8 / x).powf(0.3))).collect();
    let fit = fit_power_law(Law::D, &d, &bent, Floor::Auto, &boot()).expect("fit");
    let choice = fit.choice.expect("both forms scored");
    assert!(choice.keeps_e() && choice.aicc_with < choice.aicc_without - 10.0, "{choice:?}");
    assert!(rel(fit.e.expect("E kept").value, 1.7) < 0.03, "{fit:?}");

    let (alpha, n_c) = published::L_N;
    let n = logspace(1e5, 1e9, 12);
    let straight: Vec<f64> = n.iter().map(|&x| noisy(&mut rng, (n_c / x).powf(alpha))).collect();
    let fit = fit_power_law(Law::N, &n, &straight, Floor::Auto, &boot()).expect("fit");
    assert!(fit.e.is_none() && !fit.choice.expect("both forms scored").keeps_e(), "{fit:?}");
    assert!(rel(fit.alpha.value, alpha) < 0.05, "α {}", fit.alpha.value);
    // Forced, the form is the one asked for; four points are too few to score E.
    assert!(fit_power_law(Law::N, &n, &straight, Floor::With, &boot()).expect("fit").e.is_some());
    let few = fit_power_law(Law::N, &n[..4], &straight[..4], Floor::Auto, &boot()).expect("fit");
    assert!(few.e.is_none() && few.choice.is_none());
}

#[test]
fn l_of_n_and_d_with_an_irreducible_loss() {
    // E is about half the loss, as for byte-level text at small scale.
    let (e, an, ad, nc, dc) = (1.0, 0.3, 0.4, 3e4, 3e5);
    let law = |n: f64, d: f64| e + ((nc / n).powf(an / ad) + dc / d).powf(ad);
    let mut rng = SplitMix64::new(22);
    let (ns, ds, ls) = noisy_grid(&mut rng, &logspace(3e3, 3e6, 7), &logspace(1e5, 2e6, 6), law);
    let fit = fit_l_nd(&ns, &ds, &ls, Floor::Auto, &boot()).expect("fit");
    assert!(fit.choice.expect("both forms scored").keeps_e(), "{fit:?}");
    let fe = fit.e.expect("E kept");
    assert!(rel(fe.value, e) < 0.15 && fe.contains(e), "E {fe:?}");
    assert!(rel(fit.alpha_n.value, an) < 0.25 && rel(fit.alpha_2.value, ad) < 0.25, "{fit:?}");
    for i in 0..ns.len() {
        assert!(rel(fit.predict(ns[i], ds[i]), law(ns[i], ds[i])) < 0.01, "point {i}");
    }
    // Kaplan's form, forced, misses the same points by more (it has no floor to bend to).
    let kaplan = fit_l_nd(&ns, &ds, &ls, Floor::Without, &boot()).expect("fit");
    assert!(kaplan.e.is_none() && kaplan.r2 < fit.r2, "{} vs {}", kaplan.r2, fit.r2);
    // The band of the fit with E holds its resamples' E.
    let (lo, hi) = fit.band(1e6, 1e6);
    assert!(lo < law(1e6, 1e6) && law(1e6, 1e6) < hi, "[{lo}, {hi}]");
}

#[test]
fn kaplans_own_data_keeps_kaplans_form() {
    let (ns, ds, ls) = kaplan_grid(&mut SplitMix64::new(23));
    let fit = fit_l_nd(&ns, &ds, &ls, Floor::Auto, &boot()).expect("fit");
    assert!(fit.e.is_none() && !fit.choice.expect("both forms scored").keeps_e(), "{fit:?}");
}
