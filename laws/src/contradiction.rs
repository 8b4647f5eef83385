//! Kaplan et al. 2020 §6.3: along the compute-efficient frontier, N_opt(C) = k·C^a and the
//! tokens it consumes are D(C) = C/(6·N_opt(C)), which grow slower than C. L(C_min) falls
//! faster than L(D(C)), so past a compute C* the frontier would sit below the loss that its
//! own data allows: the laws contradict each other there, and must break down before it.
use serde::Serialize;

use crate::power::PowerLaw;

/// Where L(C_min)(C) meets L(D(C)). Units: those of the compute the laws were fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Contradiction {
    pub compute: f64,
    /// N_opt(C*).
    pub n: f64,
    /// D(C*) = C*/(6·N*).
    pub d: f64,
    /// L(C_min)(C*) (= L(D*)).
    pub loss: f64,
}

/// Bracket of ln C: C from 1 to e^230 in the compute's units (FLOPs or PF-days).
const LN_C: (f64, f64) = (0.0, 230.0);

/// C* where L(C_min)(C) − L(D(C)) turns from positive to negative, by bisection on ln C over
/// [0, 230] (C from 1 to e^230), with N_opt(C) = `n_opt_coeff`·C^`n_opt_exponent`. Both laws
/// are evaluated with [`PowerLaw::predict`], so a fitted irreducible term counts. None when
/// either law or the frontier is not finite and positive, or the difference is not positive at
/// the bracket's low end and negative at its high end (e.g. L(D) falls faster along the
/// frontier: no contradiction at large compute).
pub fn contradiction(
    l_cmin: &PowerLaw,
    l_d: &PowerLaw,
    n_opt_coeff: f64,
    n_opt_exponent: f64,
) -> Option<Contradiction> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let law_ok = |l: &PowerLaw| {
        positive(l.alpha.value) && positive(l.x_c.value) && l.e.is_none_or(|e| e.value.is_finite() && e.value >= 0.0)
    };
    if !(law_ok(l_cmin) && law_ok(l_d) && positive(n_opt_coeff) && n_opt_exponent.is_finite()) {
        return None;
    }
    let n_opt = |c: f64| n_opt_coeff * c.powf(n_opt_exponent);
    let d_of = |c: f64| c / (6.0 * n_opt(c));
    let f = |lc: f64| {
        let c = lc.exp();
        l_cmin.predict(c) - l_d.predict(d_of(c))
    };
    let (mut lo, mut hi) = LN_C;
    let (f_lo, f_hi) = (f(lo), f(hi));
    // Invariant: f(lo) > 0 > f(hi).
    if !(f_lo.is_finite() && f_hi.is_finite() && f_lo > 0.0 && f_hi < 0.0) {
        return None;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let v = f(mid);
        if !v.is_finite() {
            return None;
        }
        if v > 0.0 { lo = mid } else { hi = mid }
    }
    let compute = (0.5 * (lo + hi)).exp();
    let loss = l_cmin.predict(compute);
    positive(loss).then(|| Contradiction { compute, n: n_opt(compute), d: d_of(compute), loss })
}
