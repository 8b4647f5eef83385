//! Fitted ranges on every law, the distance of a query beyond them, and hold-out errors.
use ladder_laws::*;

fn logspace(lo: f64, hi: f64, k: usize) -> Vec<f64> {
    (0..k).map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (k - 1) as f64).exp()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn boot() -> Bootstrap {
    Bootstrap { resamples: 40, level: 0.95, seed: 11, ..Bootstrap::default() }
}

#[test]
fn fit_range_skips_unusable_values_and_measures_decades() {
    let r = FitRange::of(&[3e6, f64::NAN, 1e5, -2.0, 0.0, f64::INFINITY, 2e8, 4e7]);
    assert_eq!(r, FitRange { lo: 1e5, hi: 2e8 });
    // Inside, ends included: no distance.
    for x in [1e5, 3e6, 2e8] {
        assert_eq!(r.decades_beyond(x), None, "{x}");
    }
    // Above: log10(x/hi); below: log10(lo/x); both positive.
    assert!(close(r.decades_beyond(2e10).expect("above"), 2.0));
    assert!(close(r.decades_beyond(1e4).expect("below"), 1.0));
    assert!(close(r.decades_beyond(2e9 * 10f64.sqrt()).expect("above"), 1.5));
    // No distance from a non-positive query, or from a range with no data.
    assert_eq!(r.decades_beyond(0.0), None);
    assert_eq!(r.decades_beyond(f64::NAN), None);
    let empty = FitRange::of(&[-1.0, f64::NAN]);
    assert!(empty.lo.is_nan() && empty.hi.is_nan());
    assert_eq!(empty.decades_beyond(1.0), None);
}

#[test]
fn every_law_records_the_range_it_was_fitted_on() {
    let n = logspace(1e6, 1e9, 8);
    let l: Vec<f64> = n.iter().map(|&x| (8.8e13 / x).powf(0.076)).collect();
    let p = fit_power_law(Law::N, &n, &l, Floor::Without, &boot()).expect("power");
    assert_eq!(p.x_range, FitRange { lo: n[0], hi: n[7] });
    assert!(close(p.x_range.decades_beyond(1e11).expect("beyond"), 2.0));

    let (mut ns, mut ds, mut ls) = (vec![], vec![], vec![]);
    for &a in &logspace(1e6, 1e9, 4) {
        for &d in &logspace(2e7, 5e10, 4) {
            ns.push(a);
            ds.push(d);
            ls.push(((6.4e13 / a).powf(0.076 / 0.103) + 1.8e13 / d).powf(0.103));
        }
    }
    let two = fit_l_nd(&ns, &ds, &ls, Floor::Without, &boot()).expect("L(N,D)");
    assert_eq!((two.n_range.lo, two.n_range.hi), (ns[0], ns[15]));
    assert_eq!((two.x2_range.lo, two.x2_range.hi), (ds[0], ds[15]));

    // Chinchilla's constants on the same grid; 1% noise: R² on log L falls short of 1.
    let mut rng = SplitMix64::new(9);
    let runs: Vec<Run> = (0..16)
        .map(|i| {
            let l = 1.69 + 406.4 / ns[i].powf(0.34) + 410.7 / ds[i].powf(0.28);
            Run { n: ns[i], d: ds[i], loss: l * (0.01 * rng.normal()).exp() }
        })
        .collect();
    let opts = ChinchillaOptions {
        alpha_grid: vec![0.5],
        beta_grid: vec![0.5],
        e_grid: vec![0.0, 0.5],
        a_grid: vec![5.0, 10.0],
        b_grid: vec![5.0, 10.0],
        ..Default::default()
    };
    let ch = fit_chinchilla(&runs, &opts).expect("chinchilla");
    assert_eq!(ch.n_range, two.n_range);
    assert_eq!(ch.d_range, two.x2_range);
    // R² on log L, recomputed here from the fit's own predictions.
    let obs: Vec<f64> = runs.iter().map(|r| r.loss.ln()).collect();
    let pred: Vec<f64> = runs.iter().map(|r| ch.predict(r.n, r.d).ln()).collect();
    assert!(close(ch.r2, r_squared(&obs, &pred)), "{} vs {}", ch.r2, r_squared(&obs, &pred));
    assert!(ch.r2 > 0.9 && ch.r2 < 1.0, "R² {}", ch.r2);

    let loss = [2.6, 3.0, 3.4, 4.1];
    let bc: Vec<f64> = loss.iter().map(|l: &f64| 2e8 / l.powf(1.0 / 0.21)).collect();
    let law = fit_bcrit_law(&loss, &bc, &boot()).expect("B_crit");
    assert_eq!(law.loss_range, FitRange { lo: 2.6, hi: 4.1 });
    assert_eq!(law.points, 4);
    assert!(law.r2 > 0.999, "R² {}", law.r2);
}

#[test]
fn a_point_law_has_no_intervals_band_or_range() {
    let p = PowerLaw::new_point(Law::D, 0.095, 5.4e13, Some(1.5));
    assert!(close(p.predict(5.4e13), 2.5));
    assert!(p.alpha.lo.is_nan() && p.x_range.lo.is_nan() && p.draws.is_empty());
    let (lo, hi) = p.band(1e10);
    assert!(lo.is_nan() && hi.is_nan());
}

#[test]
fn holdout_error_is_relative_to_the_actual_value() {
    assert!(close(relative_error(2.2, 2.0), 0.1));
    assert!(close(relative_error(1.5, 2.0), -0.25));
    let h = HoldoutError::new(Law::N, (1e9, None), 2.0, 2.1, (1.9, 2.3));
    assert_eq!((h.label().as_str(), h.x, h.actual, h.predicted), ("L(N)", 1e9, 2.0, 2.1));
    assert!(close(h.error.value, 0.05) && close(h.error.lo, -0.05) && close(h.error.hi, 0.15), "{:?}", h.error);
    // The band covers the truth exactly when the relative interval covers 0.
    assert!(h.error.contains(0.0));
    let miss = HoldoutError::new(Law::ND, (1e9, Some(1e12)), 2.0, 2.4, (2.2, 2.6));
    assert!(!miss.error.contains(0.0) && close(miss.error.lo, 0.1));
    assert_eq!(miss.label(), "L(N,D) at D = 1.000e12");
    // Without a band the bounds are NaN and the value is still there.
    let bare = HoldoutError::new(Law::CMin, (1.0, None), 4.0, 3.0, (f64::NAN, f64::NAN));
    assert!(close(bare.error.value, -0.25) && bare.error.lo.is_nan() && bare.error.hi.is_nan());
}

/// Loss-vs-compute curves, loss[i]·(C/1e9)^−0.01 for size n[i]: at every budget the sizes keep
/// the ratios of `loss`, so an IsoFLOP parabola's vertex stays where `loss` puts it.
fn flat_curves(n: &[f64], loss: &[f64]) -> Vec<ladder_laws::ComputeCurve> {
    n.iter()
        .zip(loss)
        .map(|(&n, &l)| ladder_laws::ComputeCurve {
            n,
            points: (0..20).map(|k| (1e9 * 10f64.powf(k as f64 * 0.15), l * 10f64.powf(-0.0015 * k as f64))).collect(),
        })
        .collect()
}

#[test]
fn isoflop_vertices_outside_the_measured_sizes_are_not_reported() {
    let boot = ladder_laws::Bootstrap { resamples: 0, ..Default::default() };
    // Convex and still falling at the largest size: the parabola's vertex sits near N = 1e7.
    let beyond = ladder_laws::fit_frontier(&flat_curves(&[1e4, 1e5, 1e6], &[3.0, 2.5, 2.2]), 10, Floor::Without, &boot)
        .expect("frontier");
    assert!(beyond.isoflops.iter().filter(|i| i.profile.len() == 3).count() >= 3, "{:?}", beyond.isoflops);
    assert!(beyond.isoflops.iter().all(|i| i.n_opt.is_none()), "{:?}", beyond.isoflops);
    // A minimum inside: the vertex is reported, between the neighbours of the best size.
    let inside = ladder_laws::fit_frontier(&flat_curves(&[1e4, 1e5, 1e6], &[2.6, 2.4, 2.5]), 10, Floor::Without, &boot)
        .expect("frontier");
    for iso in inside.isoflops.iter().filter(|i| i.profile.len() == 3) {
        let n = iso.n_opt.expect("vertex inside");
        assert!((1e4..1e6).contains(&n), "{n}");
    }
}
