//! Are the intervals calibrated? 200 synthetic sweeps shaped like the demo (8 sizes, each a trunk
//! with 8 cooldown ends at 8 D), their losses from known Chinchilla constants with noise that a
//! size's points share (its trunk: seed, data order, learning rate) plus noise of each point.
//! Nominal 95% intervals on α and β must cover the truth in 90% to 98% of the sweeps. Resampling
//! points, as if each cooldown end were independent, covers α far less often: the test of why
//! the bootstrap draws sizes.
use ladder_laws::bootstrap::Unit;
use ladder_laws::{Bootstrap, ChinchillaOptions, Run, SplitMix64, chinchilla_resampled, fit_chinchilla};

/// E, A, B, α, β: near the demo's fit.
const TRUTH: (f64, f64, f64, f64, f64) = (1.1, 6.4, 79.0, 0.33, 0.37);
const SWEEPS: usize = 200;
const SIZES: usize = 8;

fn sweep(rng: &mut SplitMix64) -> Vec<Run> {
    let (e, a, b, alpha, beta) = TRUTH;
    let mut runs = Vec::new();
    for i in 0..SIZES {
        let n = 3.3e3 * (1.55e6f64 / 3.3e3).powf(i as f64 / (SIZES - 1) as f64);
        // The trunk's share of the noise: an offset on log L that every cooldown end of this
        // size shares (the demo's residuals: 0.010 between sizes), and each point's own.
        let offset = 0.010 * rng.normal();
        for j in 0..8 {
            let d = 1.06e5 * 2f64.sqrt().powi(j);
            let loss = e + a / n.powf(alpha) + b / d.powf(beta);
            let noise = offset + 0.005 * rng.normal();
            runs.push(Run { n, d, loss: loss * noise.exp() });
        }
    }
    runs
}

/// The share of sweeps whose intervals on α and on β hold the truth.
fn coverage(unit: Unit, sweeps: usize) -> (f64, f64, usize) {
    let mut rng = SplitMix64::new(2024);
    let (mut alpha, mut beta, mut failed) = (0, 0, 0);
    let opts = ChinchillaOptions { best_starts: Some(16), ..ChinchillaOptions::default() };
    for s in 0..sweeps {
        let runs = sweep(&mut rng);
        let fit = fit_chinchilla(&runs, &opts).expect("a fit");
        let boot = Bootstrap { resamples: 200, seed: s as u64, unit, ..Bootstrap::default() };
        let (est, _, tally) = chinchilla_resampled(&runs, &fit, &boot);
        alpha += usize::from(est[3].contains(TRUTH.3));
        beta += usize::from(est[4].contains(TRUTH.4));
        failed += tally.failed;
    }
    (alpha as f64 / sweeps as f64, beta as f64 / sweeps as f64, failed)
}

#[test]
fn nominal_95_percent_intervals_cover_the_true_exponents_in_90_to_98_percent_of_sweeps() {
    let started = std::time::Instant::now();
    let (alpha, beta, failed) = coverage(Unit::Sizes, SWEEPS);
    println!(
        "sizes resampled: α covered in {:.1}%, β in {:.1}% of {SWEEPS} sweeps; {failed} of {} resamples failed ({:.0} s)",
        100.0 * alpha,
        100.0 * beta,
        SWEEPS * 200,
        started.elapsed().as_secs_f64()
    );
    assert!((0.90..=0.98).contains(&alpha), "α covered in {alpha}");
    assert!((0.90..=0.98).contains(&beta), "β covered in {beta}");

    // Points resampled: the trunk's share is never redrawn, and α's interval is too narrow.
    let (alpha_points, _, _) = coverage(Unit::Points, SWEEPS / 4);
    println!("points resampled: α covered in {:.1}% of {} sweeps", 100.0 * alpha_points, SWEEPS / 4);
    assert!(alpha_points < 0.85, "α covered in {alpha_points} with points resampled");
}
