//! L(N, S) on a sweep with branches: fitted to the constant-rate trunks, the one schedule every
//! size shares. A cooldown's own points anneal below its trunk's at the same S; mixed in, they
//! pulled the demo's fit to R² 0.81 (0.96 on the trunks alone).
use ladder_analysis::Options;
use ladder_analysis::fit::fit_laws;
use ladder_analysis::inputs::{CurvePoint, Inputs, RunCurve, RunKind};

const B: f64 = 1024.0;
const B_SIMPLE: f64 = 1024.0;
/// α_N, α_S, N_c, S_c of the truth.
const LAW: (f64, f64, f64, f64) = (0.3, 0.2, 500.0, 5000.0);

/// Eq. 1.6 at N and step S (S_min = S / (1 + B_simple / B), eq. 5.4).
fn loss(n: f64, step: f64) -> f64 {
    let s_min = step / (1.0 + B_SIMPLE / B);
    (LAW.2 / n).powf(LAW.0) + (LAW.3 / s_min).powf(LAW.1)
}

fn curve(job: u64, n: f64, kind: RunKind, parent: Option<u64>, steps: &[f64], scale: f64) -> RunCurve {
    let points = steps
        .iter()
        .map(|&step| {
            let l = scale * loss(n, step);
            let tokens = step * B;
            CurvePoint {
                step,
                tokens,
                flops: 6.0 * n * tokens,
                train: l,
                smooth: l,
                val: Some(l),
                b_simple: Some(B_SIMPLE),
            }
        })
        .collect();
    RunCurve {
        job,
        label: format!("job {job}"),
        n,
        b: B,
        warmup_steps: 20.0,
        data_limited: false,
        kind,
        parent,
        points,
    }
}

#[test]
fn l_of_n_and_s_is_fitted_to_the_trunks_not_to_the_cooldowns_annealing() {
    let trunk_steps: Vec<f64> = (1..=10).map(|k| 100.0 * k as f64).collect();
    let mut inputs = Inputs::default();
    for (i, n) in [3e3, 3e4, 3e5, 1.5e6].into_iter().enumerate() {
        let trunk = i as u64 + 1;
        inputs.curves.push(curve(trunk, n, RunKind::Trunk, None, &trunk_steps, 1.0));
        // A cooldown from step 800 to 1000: annealing, 5% below the trunk at the same step.
        inputs.curves.push(curve(10 + trunk, n, RunKind::Cooldown, Some(trunk), &[850.0, 900.0, 950.0, 1000.0], 0.95));
    }
    let report = fit_laws(&inputs, &Options { bootstrap: 20, ..Options::default() });
    let f = report.l_ns.expect("L(N,S) fitted");
    // 9 points a trunk (past the first tenth), none from the cooldowns.
    assert_eq!(f.points, 36);
    assert!((f.alpha_n.value - LAW.0).abs() < 0.01, "α_N {}", f.alpha_n.value);
    assert!((f.alpha_2.value - LAW.1).abs() < 0.01, "α_S {}", f.alpha_2.value);
    assert!(f.r2 > 0.999, "R² {}", f.r2);
}
