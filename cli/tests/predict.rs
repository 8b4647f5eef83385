//! `ladder fit --predict` and `--holdout` as a user reads them: every law's prediction with a
//! 95% prediction interval, and each held-out law's error beside the naive guesses'.
use std::process::Output;

fn ladder(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ladder")).args(args).output().expect("run ladder")
}

/// A Chinchilla grid, 6 sizes × 5 token counts, with ±1.5% deterministic scatter.
fn grid_csv(dir: &std::path::Path) -> String {
    let mut body = String::from("N,D,loss\n");
    let mut k = 0u32;
    for i in 0..6 {
        for j in 0..5 {
            let n = 1e6 * 2f64.powi(i);
            let d = 1e7 * 2f64.powi(j);
            let loss = 1.7 + 400.0 / n.powf(0.34) + 410.0 / d.powf(0.28);
            // A fixed, sign-alternating pattern standing in for seed scatter.
            let scatter = [0.012, -0.015, 0.004, -0.008, 0.015, -0.003, 0.009][k as usize % 7];
            k += 1;
            body.push_str(&format!("{n},{d},{}\n", loss * (1.0 + scatter)));
        }
    }
    let p = dir.join("grid.csv");
    std::fs::write(&p, body).expect("write csv");
    p.display().to_string()
}

/// The numbers in `[lo, hi]` on a line.
fn interval(line: &str) -> Option<(f64, f64)> {
    let inner = line.split('[').nth(1)?.split(']').next()?;
    let (lo, hi) = inner.split_once(", ")?;
    Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
}

#[test]
fn predict_prints_a_prediction_interval_for_every_law() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = grid_csv(dir.path());
    let o = ladder(&["fit", "--csv", &p, "--predict", "N=1e8,D=1e9", "--bootstrap", "100"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    let at = out.find("Predictions at N=1e8,D=1e9").unwrap_or_else(|| panic!("no predictions in:\n{out}"));
    let lines: Vec<&str> = out[at..].lines().skip(1).take_while(|l| l.starts_with("  ")).collect();
    for law in ["L(N,D)", "Chinchilla"] {
        let line = lines.iter().find(|l| l.trim_start().starts_with(law)).unwrap_or_else(|| panic!("{law}: {lines:?}"));
        let value: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a value");
        let (lo, hi) = interval(line).unwrap_or_else(|| panic!("no interval on {line:?}"));
        // The interval holds the prediction and is wider than the ±1.5% scatter of one run.
        assert!(lo < value && value < hi, "{line}");
        assert!(hi / lo > 1.02, "{law}: an interval narrower than one run's scatter: {line}");
    }
    assert!(lines.iter().all(|l| interval(l).is_some()), "every law has an interval: {lines:?}");

    let o = ladder(&["--output", "json", "fit", "--csv", &p, "--predict", "N=1e8,D=1e9", "--bootstrap", "100"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let ch = &v["predictions"]["Chinchilla"];
    let (lo, value, hi) = (ch["lo"].as_f64(), ch["value"].as_f64(), ch["hi"].as_f64());
    assert!(matches!((lo, value, hi), (Some(l), Some(x), Some(h)) if l < x && x < h), "{ch}");
}

#[test]
fn the_holdout_sets_each_law_beside_persistence_and_a_two_point_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = grid_csv(dir.path());
    let o = ladder(&["--output", "json", "fit", "--csv", &p, "--holdout", "1", "--bootstrap", "100"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let rows = v["report"]["holdout"].as_array().expect("hold-out rows");
    let chinchilla: Vec<_> = rows.iter().filter(|h| h["law"] == "Chinchilla").collect();
    assert_eq!(chinchilla.len(), 5, "one per D at the held-out size: {rows:?}");
    for h in &chinchilla {
        // Persistence is the 1.6e7-parameter run's loss at the same D, measured as written.
        let (n, d) = (3.2e7f64, h["x2"].as_f64().expect("D"));
        let truth = 1.7 + 400.0 / (n / 2.0).powf(0.34) + 410.0 / d.powf(0.28);
        let persistence = h["baselines"]["persistence"].as_f64().expect("persistence");
        assert!((persistence / truth - 1.0).abs() < 0.016, "{h}");
        assert!(h["baselines"]["two_point"].as_f64().is_some(), "{h}");
    }

    let o = ladder(&["fit", "--csv", &p, "--holdout", "1", "--bootstrap", "100"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let line =
        out.lines().find(|l| l.contains("vs persistence")).unwrap_or_else(|| panic!("no baseline line in:\n{out}"));
    let ratio: f64 =
        line.split("ratio ").nth(1).and_then(|r| r.split(',').next()).and_then(|r| r.parse().ok()).expect("ratio");
    assert!(ratio.is_finite() && ratio > 0.0, "{line}");
    assert!(line.contains("two-point line"), "{line}");
}

#[test]
fn a_backtest_of_too_few_sizes_names_them_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = String::from("N,D,loss\n");
    for n in [1e6, 2e6, 4e6] {
        for d in [1e7, 2e7, 4e7] {
            body.push_str(&format!("{n},{d},{}\n", 1.7 + 400.0 / f64::powf(n, 0.34) + 410.0 / f64::powf(d, 0.28)));
        }
    }
    let p = dir.path().join("three.csv");
    std::fs::write(&p, body).expect("write csv");
    let o = ladder(&["fit", "--csv", &p.display().to_string(), "--backtest"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--backtest") && err.contains("has 3 model sizes"), "{err}");
}

/// The grid with a `layers` column: the two smallest sizes have one layer and lie 15% above
/// the law the deeper ones follow.
fn grid_with_layers(dir: &std::path::Path) -> String {
    let mut body = String::from("N,n_layer,D,loss\n");
    for i in 0..6 {
        for j in 0..5 {
            let n = 1e6 * 2f64.powi(i);
            let d = 1e7 * 2f64.powi(j);
            let (layers, off) = if i < 2 { (1, 1.15) } else { (i, 1.0) };
            let loss = (1.7 + 400.0 / n.powf(0.34) + 410.0 / d.powf(0.28)) * off;
            body.push_str(&format!("{n},{layers},{d},{loss}\n"));
        }
    }
    let p = dir.join("layers.csv");
    std::fs::write(&p, body).expect("write csv");
    p.display().to_string()
}

#[test]
fn one_layer_sizes_are_left_out_and_said_so_unless_min_layers_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = grid_with_layers(dir.path());
    let o = ladder(&["fit", "--csv", &p, "--law", "chinchilla", "--bootstrap", "20"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("left out of every fit, sizes with fewer than 2 layers: N = 1.000e6, 2.000e6"), "{text}");
    assert!(text.contains("N in [4.000e6, 3.200e7]"), "the fits start at the first 2-layer size: {text}");

    let o = ladder(&["fit", "--csv", &p, "--law", "chinchilla", "--bootstrap", "20", "--min-layers", "1"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("fewer than"), "{text}");
    assert!(text.contains("N in [1.000e6, 3.200e7]"), "{text}");

    // A depth that is not a whole number is bad input, named with its line.
    std::fs::write(dir.path().join("bad.csv"), "N,layers,D,loss\n1e6,1.5,1e7,3.0\n").expect("write");
    let o = ladder(&["fit", "--csv", &dir.path().join("bad.csv").display().to_string()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.csv:2") && err.contains("layers"), "{err}");
}
