//! Kaplan et al. 2020's two-variable laws, eq. 1.5 L(N, D) and eq. 1.6 L(N, S_min), and the
//! constants that paper published, for printing beside a fit. L(N, D) may carry an irreducible
//! loss E (Henighan et al. 2020), kept or not by [`Floor`].
use serde::Serialize;

use crate::bootstrap::{Bootstrap, Estimate, Tally, central, resample, resample_weighted};
use crate::error::{LawsError, Result};
use crate::form::{Floor, FormChoice, choose};
use crate::optimize::{lse, minimise, r_squared};
use crate::power::check;
use crate::range::FitRange;
use crate::residual::{WorstPoint, worst_point};

/// Kaplan et al. 2020's published constants (WebText2, GPT-2 tokens; C in PF-days).
pub mod published {
    /// L(N): α_N, N_c (eq. 1.1).
    pub const L_N: (f64, f64) = (0.076, 8.8e13);
    /// L(D): α_D, D_c (eq. 1.2).
    pub const L_D: (f64, f64) = (0.095, 5.4e13);
    /// L(C_min): α_C^min, C_c^min in PF-days (eq. 1.3).
    pub const L_CMIN: (f64, f64) = (0.050, 3.1e8);
    /// L(N, D): α_N, α_D, N_c, D_c (eq. 1.5, Table 2).
    pub const L_ND: (f64, f64, f64, f64) = (0.076, 0.103, 6.4e13, 1.8e13);
    /// L(N, S): α_N, α_S, N_c, S_c (eq. 1.6, Table 3).
    pub const L_NS: (f64, f64, f64, f64) = (0.077, 0.76, 6.5e13, 2.1e3);
    /// B_crit(L) = B*/L^(1/α_B): B* in tokens, α_B (eq. 1.4).
    pub const B_CRIT: (f64, f64) = (2.0e8, 0.21);
    /// N_opt ∝ C_min^0.73, B_opt ∝ C_min^0.24, S ∝ C_min^0.03 (eq. 1.7).
    pub const FRONTIER_N: f64 = 0.73;
    pub const FRONTIER_B: f64 = 0.24;
    /// FLOPs in one PF-day.
    pub const PF_DAY: f64 = 8.64e19;
}

/// A fitted two-variable law: α_1, α_2, c_1, c_2 with intervals.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TwoVarLaw {
    pub law: crate::Law,
    /// α_N.
    pub alpha_n: Estimate,
    /// α_D (eq. 1.5) or α_S (eq. 1.6).
    pub alpha_2: Estimate,
    pub n_c: Estimate,
    /// D_c or S_c.
    pub c_2: Estimate,
    /// Irreducible loss, when fitted (L(N, D) only).
    #[serde(default)]
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
    /// The N and the D (or S) the law was fitted on.
    pub n_range: FitRange,
    pub x2_range: FitRange,
    /// The residual standard deviation on log L, for prediction intervals.
    #[serde(default = "crate::interval::unknown")]
    pub resid_sd: f64,
    /// How the bootstrap went: resamples, failures, and the sizes (or points) drawn.
    #[serde(default)]
    pub tally: Tally,
    /// Bootstrap resamples' constants (α_N, α_2, N_c, c_2[, E]), for the prediction band.
    #[serde(skip)]
    pub draws: Vec<Vec<f64>>,
}

#[derive(Clone, Copy)]
enum Form {
    /// L = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D.
    ND,
    /// L = (N_c/N)^α_N + (S_c/S)^α_S.
    NS,
}

/// log L̂ with p = [α_N, α_2, ln N_c, ln c_2] or [α_N, α_2, ln N_c, ln c_2, ln E].
fn log_pred(form: Form, p: &[f64], ln: f64, l2: f64) -> f64 {
    let reducible = match form {
        Form::ND => p[1] * lse(p[0] / p[1] * (p[2] - ln), p[3] - l2),
        Form::NS => lse(p[0] * (p[2] - ln), p[1] * (p[3] - l2)),
    };
    p.get(4).map_or(reducible, |&le| lse(reducible, le))
}

/// L̂ from natural constants c = [α_N, α_2, N_c, c_2] or [α_N, α_2, N_c, c_2, E].
fn eval(form: Form, c: &[f64], n: f64, x2: f64) -> f64 {
    let logs: Vec<f64> = c.iter().enumerate().map(|(i, v)| if i < 2 { *v } else { v.ln() }).collect();
    log_pred(form, &logs, n.ln(), x2.ln()).exp()
}

impl TwoVarLaw {
    fn form(&self) -> Form {
        if self.law == crate::Law::ND { Form::ND } else { Form::NS }
    }

    pub fn predict(&self, n: f64, x2: f64) -> f64 {
        let mut c = vec![self.alpha_n.value, self.alpha_2.value, self.n_c.value, self.c_2.value];
        c.extend(self.e.map(|e| e.value));
        eval(self.form(), &c, n, x2)
    }

    /// The 95% bootstrap band of the prediction at (N, D or S) (NaN without resamples).
    pub fn band(&self, n: f64, x2: f64) -> (f64, f64) {
        let form = self.form();
        central(self.draws.iter().map(|c| eval(form, c, n, x2)).collect(), 0.95)
    }

    /// The 95% prediction interval of a run's loss at (N, D or S): the band with the residual
    /// scatter added (NaN without resamples).
    pub fn interval(&self, n: f64, x2: f64) -> (f64, f64) {
        let form = self.form();
        crate::interval::prediction_interval(self.draws.iter().map(|c| eval(form, c, n, x2)), self.resid_sd, 0.95)
    }
}

/// The sum of squared residuals on log L, each weighted by `w` (empty: all 1).
fn objective<'a>(
    form: Form,
    ln: &'a [f64],
    l2: &'a [f64],
    ll: &'a [f64],
    w: &'a [f64],
) -> impl Fn(&[f64]) -> f64 + Sync + 'a {
    move |p: &[f64]| -> f64 {
        if p[1] <= 1e-4 || p[0] <= 1e-4 {
            return f64::MAX;
        }
        (0..ll.len())
            .map(|i| w.get(i).copied().unwrap_or(1.0) * (log_pred(form, p, ln[i], l2[i]) - ll[i]).powi(2))
            .sum()
    }
}

/// Starts over a grid of exponents, each term a share of the median loss less E (`le`: ln E).
fn starts(form: Form, ln: &[f64], l2: &[f64], ll: &[f64], le: Option<f64>) -> Vec<Vec<f64>> {
    let med = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let (mn, m2) = (med(ln), med(l2));
    let ml = med(ll).exp() - le.map_or(0.0, f64::exp);
    let mut starts = Vec::new();
    for a1 in [0.05, 0.1, 0.3, 0.7] {
        for a2 in [0.05, 0.1, 0.3, 0.7, 1.0] {
            for share in [0.25, 0.5, 0.75] {
                // Each term is `share` / 1 − share of the median reducible loss at the median point.
                let mut p = match form {
                    Form::ND => {
                        let inner = ml.powf(1.0 / a2);
                        vec![a1, a2, mn + (share * inner).ln() * a2 / a1, m2 + ((1.0 - share) * inner).ln()]
                    }
                    Form::NS => vec![a1, a2, mn + (share * ml).ln() / a1, m2 + ((1.0 - share) * ml).ln() / a2],
                };
                p.extend(le);
                if p.iter().all(|v| v.is_finite()) {
                    starts.push(p);
                }
            }
        }
    }
    starts
}

fn fit_raw(form: Form, (ln, l2, ll): (&[f64], &[f64], &[f64]), w: &[f64], starts: &[Vec<f64>]) -> Option<Vec<f64>> {
    let scale: &[f64] = if starts.first().is_some_and(|s| s.len() == 5) {
        &[0.02, 0.02, 1.0, 1.0, 0.1]
    } else {
        &[0.02, 0.02, 1.0, 1.0]
    };
    minimise(&objective(form, ln, l2, ll, w), starts, scale, 6000).map(|(p, _)| p)
}

/// The starts without E, or with E at three fractions of the lowest loss.
fn all_starts(form: Form, ln: &[f64], l2: &[f64], ll: &[f64], with_e: bool) -> Vec<Vec<f64>> {
    if !with_e {
        return starts(form, ln, l2, ll, None);
    }
    let lmin = ll.iter().copied().fold(f64::INFINITY, f64::min);
    [0.3, 0.6, 0.85].iter().flat_map(|f| starts(form, ln, l2, ll, Some(lmin + f64::ln(*f)))).collect()
}

fn fit_two(
    form: Form,
    law: crate::Law,
    (n, x2, loss): (&[f64], &[f64], &[f64]),
    floor: Floor,
    boot: &Bootstrap,
) -> Result<TwoVarLaw> {
    if n.len() != x2.len() || n.len() != loss.len() || n.len() < 6 {
        return Err(LawsError::TooFewPoints { law, got: n.len().min(x2.len()).min(loss.len()), need: 6 });
    }
    check(law, "N", n)?;
    check(law, if matches!(form, Form::ND) { "D" } else { "S" }, x2)?;
    check(law, "loss", loss)?;
    let ln: Vec<f64> = n.iter().map(|v| v.ln()).collect();
    let l2: Vec<f64> = x2.iter().map(|v| v.ln()).collect();
    let ll: Vec<f64> = loss.iter().map(|v| v.ln()).collect();
    let sse = objective(form, &ln, &l2, &ll, &[]);
    let point = |with_e: bool| {
        let p = fit_raw(form, (&ln, &l2, &ll), &[], &all_starts(form, &ln, &l2, &ll, with_e))?;
        let s = sse(&p);
        Some((p, s))
    };
    let (p, with_e, choice) = choose(floor, n.len(), 4, || point(false), || point(true))
        .ok_or_else(|| LawsError::NoSolution { law, message: "no start converged".into() })?;
    let natural = |p: Vec<f64>| p.iter().enumerate().map(|(i, v)| if i < 2 { *v } else { v.exp() }).collect();
    let value: Vec<f64> = natural(p.clone());
    // Each resample starts from the full fit: a resample's optimum lies near it, and the grid of
    // 60 (180 with E) starts per resample made one bootstrap of 1,000 points take 40 s.
    let start = std::slice::from_ref(&p);
    let resampled = match boot.unit {
        // Every size kept, weighed by one draw each (see `resample_weighted`).
        crate::Unit::Sizes => {
            resample_weighted(&boot.units(n), &value, boot, |w| fit_raw(form, (&ln, &l2, &ll), w, start).map(natural))
        }
        crate::Unit::Points => resample(&boot.units(n), &value, boot, |idx| {
            let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            fit_raw(form, (&pick(&ln), &pick(&l2), &pick(&ll)), &[], start).map(natural)
        }),
    };
    let tally = resampled.tally(boot);
    let (est, draws) = (resampled.estimates, resampled.draws);
    let mut out = TwoVarLaw {
        law,
        alpha_n: est[0],
        alpha_2: est[1],
        n_c: est[2],
        c_2: est[3],
        e: with_e.then(|| est[4]),
        choice,
        r2: 0.0,
        worst: None,
        points: n.len(),
        n_range: FitRange::of(n),
        x2_range: FitRange::of(x2),
        resid_sd: f64::NAN,
        tally,
        draws,
    };
    let pred: Vec<f64> = (0..n.len()).map(|i| out.predict(n[i], x2[i]).ln()).collect();
    out.resid_sd = crate::interval::residual_sd(&ll, &pred, if with_e { 5 } else { 4 });
    out.r2 = r_squared(&ll, &pred);
    out.worst = worst_point(n.iter().zip(x2).map(|(&a, &b)| (a, Some(b))), &ll, &pred);
    Ok(out)
}

/// Eq. 1.5: L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D, with E added as `floor` says.
pub fn fit_l_nd(n: &[f64], d: &[f64], loss: &[f64], floor: Floor, boot: &Bootstrap) -> Result<TwoVarLaw> {
    fit_two(Form::ND, crate::Law::ND, (n, d, loss), floor, boot)
}

/// Eq. 1.6: L(N, S_min) = (N_c/N)^α_N + (S_c/S_min)^α_S.
pub fn fit_l_ns(n: &[f64], s_min: &[f64], loss: &[f64], boot: &Bootstrap) -> Result<TwoVarLaw> {
    fit_two(Form::NS, crate::Law::NS, (n, s_min, loss), Floor::Without, boot)
}
