//! The additivity test's false alarms and power, on synthetic sweeps shaped like the demo's: five
//! sizes, eight D, each size one trunk (an offset shared by its D, which cancels in a gain as a
//! real trunk's does) plus per-run noise.
use ladder_laws::{Run, SplitMix64, additivity};

/// `coupling`: extra gain per decade of N from the smallest D to the largest (0: additive).
fn sweep(rng: &mut SplitMix64, coupling: f64) -> Vec<Run> {
    let ns = [2.5e4_f64, 5.7e4, 1.0e5, 3.4e5, 7.9e5];
    let ds = [1.06e5, 1.5e5, 2.1e5, 3.0e5, 4.2e5, 6.0e5, 8.5e5, 1.2e6];
    let mut runs = Vec::new();
    for n in ns {
        let trunk = 0.01 * rng.normal();
        for (j, d) in ds.into_iter().enumerate() {
            let extra = coupling * (n / ns[0]).log10() * j as f64 / (ds.len() - 1) as f64;
            let loss = 1.2 + 40.0 / f64::powf(n, 0.35) + 60.0 / f64::powf(d, 0.33) - extra;
            runs.push(Run { n, d, loss: loss + trunk + 0.005 * rng.normal() });
        }
    }
    runs
}

#[test]
fn an_additive_truth_is_rejected_about_one_time_in_twenty() {
    let mut rng = SplitMix64::new(7);
    let rejected = (0..400).filter(|_| additivity(&sweep(&mut rng, 0.0)).expect("five sizes").rejected).count();
    let rate = rejected as f64 / 400.0;
    println!("false alarms: {rejected} of 400 ({:.1}%)", 100.0 * rate);
    assert!((0.02..=0.09).contains(&rate), "false-alarm rate {rate}, nominal 0.05");
}

#[test]
fn a_coupling_the_size_of_the_demos_is_found_nearly_always() {
    // The built-in demo's deep sizes gain 0.047 nats more per decade of N (`ladder fit` on its ends).
    let mut rng = SplitMix64::new(11);
    let found = (0..200)
        .filter(|_| {
            let a = additivity(&sweep(&mut rng, 0.04)).expect("five sizes");
            a.rejected && a.slope.value > 0.0
        })
        .count();
    println!("found: {found} of 200");
    assert!(found >= 180, "a 0.04 nats/decade coupling found {found} times of 200");
}
