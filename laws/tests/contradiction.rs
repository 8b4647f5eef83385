//! Kaplan et al. 2020 §6.3: where L(C_min) meets L(D(C)) along the compute-efficient frontier.
use ladder_laws::*;

/// N_opt = k·C^a such that D(C) = C/(6·N_opt) = d0·C^b: a = 1 − b, k = 1/(6·d0).
fn frontier_for(d0: f64, b: f64) -> (f64, f64) {
    (1.0 / (6.0 * d0), 1.0 - b)
}

/// Pure power laws: ln C* = [α_C ln C_c − α_D ln D_c − α_D ln(6k)] / [α_C − α_D(1 − a)].
fn closed_ln(ac: f64, cc: f64, ad: f64, dc: f64, k: f64, a: f64) -> f64 {
    (ac * cc.ln() - ad * dc.ln() - ad * (6.0 * k).ln()) / (ac - ad * (1.0 - a))
}

#[test]
fn kaplan_published_constants_cross_near_1e4_pf_days() {
    let (ac, cc) = published::L_CMIN;
    let (ad, dc) = published::L_D;
    let l_cmin = PowerLaw::new_point(Law::CMin, ac, cc, None);
    let l_d = PowerLaw::new_point(Law::D, ad, dc, None);
    // Kaplan §6.3: D(C_min) = 2e10 tokens · (C_min / PF-day)^0.26.
    let (k, a) = frontier_for(2e10, 0.26);
    let x = contradiction(&l_cmin, &l_d, k, a).expect("the laws cross");
    // Kaplan report C* ~ 1e4 PF-days and L* ~ 1.7 nats.
    assert!((x.compute / 1e4).log10().abs() < 1.0, "C* {:e}", x.compute);
    assert!((x.loss - 1.7).abs() / 1.7 < 0.10, "L* {}", x.loss);
    // At C* both laws give the same loss, and N*, D* are the frontier's.
    assert!((l_d.predict(x.d) - x.loss).abs() < 1e-9, "{x:?}");
    assert!((x.n - k * x.compute.powf(a)).abs() <= 1e-12 * x.n);
    assert!((x.d - 2e10 * x.compute.powf(0.26)).abs() <= 1e-9 * x.d);

    // The bisection agrees with the closed form.
    let closed = closed_ln(ac, cc, ad, dc, k, a).exp();
    assert!((x.compute - closed).abs() / closed < 1e-6, "{:e} vs {closed:e}", x.compute);
    // 8.97 in ln C, i.e. 7.9e3 PF-days; 1.70 nats.
    assert!((closed.ln() - 8.97).abs() < 0.01, "{closed:e}");
}

#[test]
fn another_pair_matches_the_closed_form() {
    let (ac, cc, ad, dc) = (0.07, 2.0e30, 0.12, 3.0e14);
    let (k, a) = (0.3, 0.6);
    let l_cmin = PowerLaw::new_point(Law::CMin, ac, cc, None);
    let l_d = PowerLaw::new_point(Law::D, ad, dc, None);
    let x = contradiction(&l_cmin, &l_d, k, a).expect("cross");
    // ln C* = (4.884 − 4.000 − 0.071)/0.022 ≈ 37, inside the bracket.
    assert!((closed_ln(ac, cc, ad, dc, k, a) - 36.97).abs() < 0.01);
    let closed = closed_ln(ac, cc, ad, dc, k, a).exp();
    assert!((x.compute - closed).abs() / closed < 1e-6, "{:e} vs {closed:e}", x.compute);
}

#[test]
fn an_irreducible_term_is_respected() {
    // The same laws with E = 1 on both sides: (C_c/C)^α_C = (D_c/D)^α_D again at the pure C*,
    // so the crossing does not move and L* rises by exactly 1.
    let (ac, cc) = published::L_CMIN;
    let (ad, dc) = published::L_D;
    let (k, a) = frontier_for(2e10, 0.26);
    let pure =
        contradiction(&PowerLaw::new_point(Law::CMin, ac, cc, None), &PowerLaw::new_point(Law::D, ad, dc, None), k, a)
            .expect("pure");
    let floored = contradiction(
        &PowerLaw::new_point(Law::CMin, ac, cc, Some(1.0)),
        &PowerLaw::new_point(Law::D, ad, dc, Some(1.0)),
        k,
        a,
    )
    .expect("floored");
    assert!((floored.compute - pure.compute).abs() / pure.compute < 1e-6);
    assert!((floored.loss - pure.loss - 1.0).abs() < 1e-9);
    // A higher floor under L(C_min) than under L(D) keeps the frontier above forever.
    let never = contradiction(
        &PowerLaw::new_point(Law::CMin, ac, cc, Some(1.2)),
        &PowerLaw::new_point(Law::D, ad, dc, Some(1.0)),
        k,
        a,
    );
    assert_eq!(never, None);
}

#[test]
fn no_contradiction_when_l_of_d_falls_faster_or_inputs_are_bad() {
    let (ac, cc) = published::L_CMIN;
    let l_cmin = PowerLaw::new_point(Law::CMin, ac, cc, None);
    // α_D·b = 0.3·0.9 = 0.27 > α_C: along the frontier L(D) falls faster, so L(C_min) starts
    // below it and never comes back above.
    let l_d = PowerLaw::new_point(Law::D, 0.3, 5.4e13, None);
    let (k, a) = frontier_for(2e10, 0.9);
    assert_eq!(contradiction(&l_cmin, &l_d, k, a), None);
    let good = PowerLaw::new_point(Law::D, 0.095, 5.4e13, None);
    let (k, a) = frontier_for(2e10, 0.26);
    assert!(contradiction(&l_cmin, &good, k, a).is_some());
    assert_eq!(contradiction(&l_cmin, &good, 0.0, a), None);
    assert_eq!(contradiction(&l_cmin, &good, -k, a), None);
    assert_eq!(contradiction(&l_cmin, &good, k, f64::NAN), None);
    assert_eq!(contradiction(&PowerLaw::new_point(Law::CMin, f64::NAN, cc, None), &good, k, a), None);
    assert_eq!(contradiction(&PowerLaw::new_point(Law::CMin, ac, -cc, None), &good, k, a), None);
}
