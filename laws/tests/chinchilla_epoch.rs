//! Must show 1 of the laws issue: the Chinchilla fit on Epoch AI's extraction of Hoffmann et al.'s
//! Figure 4 (the repo's testdata/) lands within the published tolerances, with and without the outliers.
use ladder_laws::{ChinchillaOptions, Run, fit_chinchilla};
use sha2::{Digest, Sha256};

const SHA256: &str = "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30";

fn runs() -> Vec<Run> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/chinchilla_epoch_svg_extracted.csv");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (the repo's testdata/)"));
    assert_eq!(hex::encode(Sha256::digest(&bytes)), SHA256, "the reference file was modified");
    let text = String::from_utf8(bytes).expect("utf-8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("column {name}"));
    let (cn, cc, cl) = (col("Model Size"), col("Training FLOP"), col("loss"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap_or_else(|e| panic!("{l}: {e}"));
            let (n, c) = (num(cn), num(cc));
            // D = C / (6N), as in Epoch's analysis.
            Run { n, d: c / (6.0 * n), loss: num(cl) }
        })
        .collect()
}

#[test]
fn epoch_replication_without_the_five_highest_losses() {
    let mut all = runs();
    assert_eq!(all.len(), 245);
    all.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    let kept = &all[..240];
    let fit = fit_chinchilla(kept, &ChinchillaOptions::default()).expect("fit");
    eprintln!("240 runs: {fit:?}");
    assert!((fit.alpha - 0.3473).abs() <= 0.003, "alpha {}", fit.alpha);
    assert!((fit.beta - 0.3672).abs() <= 0.005, "beta {}", fit.beta);
    assert!((fit.e - 1.817).abs() <= 0.01, "E {}", fit.e);
    assert!(fit.objective <= 1.0184e-3, "objective {}", fit.objective);
    assert!((fit.a - 477.8).abs() / 477.8 < 0.05 && (fit.b - 2143.9).abs() / 2143.9 < 0.1, "A {} B {}", fit.a, fit.b);
}

#[test]
fn epoch_replication_on_all_245_runs() {
    let fit = fit_chinchilla(&runs(), &ChinchillaOptions::default()).expect("fit");
    eprintln!("245 runs: {fit:?}");
    assert!((fit.alpha - 0.3493).abs() <= 0.003, "alpha {}", fit.alpha);
    assert!((fit.beta - 0.4530).abs() <= 0.01, "beta {}", fit.beta);
    assert!((fit.e - 1.891).abs() <= 0.01, "E {}", fit.e);
    assert!(fit.objective <= 1.8261e-3, "objective {}", fit.objective);
}

#[test]
fn synthetic_constants_are_recovered() {
    // Chinchilla's published constants, 1% multiplicative noise, a grid of N × D.
    let (e, a, b, alpha, beta) = (1.69, 406.4, 410.7, 0.34, 0.28);
    let mut rng = 12345u64;
    let mut noise = || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Sum of uniforms: roughly normal, standard deviation 1.
        let u: f64 = (0..12).map(|k| ((rng.rotate_left(5 * k) >> 11) as f64) / (1u64 << 53) as f64).sum();
        u - 6.0
    };
    let mut pts = Vec::new();
    for i in 0..12 {
        for j in 0..12 {
            let n = 1e7 * 10f64.powf(i as f64 * 4.0 / 11.0);
            let d = 1e9 * 10f64.powf(j as f64 * 3.0 / 11.0);
            let loss = (e + a / n.powf(alpha) + b / d.powf(beta)) * (1.0 + 0.01 * noise());
            pts.push(Run { n, d, loss });
        }
    }
    let fit = fit_chinchilla(&pts, &ChinchillaOptions::default()).expect("fit");
    eprintln!("synthetic: {fit:?}");
    // 144 points at 1% noise pin the exponents to a few hundredths and E to a few percent.
    assert!((fit.alpha - alpha).abs() < 0.03, "alpha {}", fit.alpha);
    assert!((fit.beta - beta).abs() < 0.03, "beta {}", fit.beta);
    assert!((fit.e - e).abs() / e < 0.05, "E {}", fit.e);
}

#[test]
fn too_few_or_impossible_points_are_errors() {
    let few = vec![Run { n: 1e8, d: 1e9, loss: 3.0 }; 3];
    let e = fit_chinchilla(&few, &ChinchillaOptions::default()).expect_err("too few").to_string();
    assert_eq!(e, "Chinchilla: 3 usable points, at least 6 are needed");
    let mut bad = vec![Run { n: 1e8, d: 1e9, loss: 3.0 }; 8];
    bad[5].loss = -1.0;
    let e = fit_chinchilla(&bad, &ChinchillaOptions::default()).expect_err("bad").to_string();
    assert_eq!(e, "Chinchilla: point 5 has loss = -1, which must be finite and positive");
}
