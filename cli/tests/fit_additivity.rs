//! `ladder fit` tests the assumption in Chinchilla's additive form, that the loss a model gains
//! from more data is the same at every N, on the runs Chinchilla is fitted to. On the demo's
//! ends (1-layer sizes left out) larger sizes gain more, which the additive form cannot follow;
//! on ends drawn from an additive law the test holds.
mod common;
use common::{demo_ends_with_layers, ladder, write};

/// `ladder fit --csv CSV` as text, and the lines that start with "additivity" or follow one.
async fn additivity_lines(csv: &str) -> Vec<String> {
    let o = ladder(&["fit", "--csv", csv, "--bootstrap", "20"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let all = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = all.lines().map(str::trim).collect();
    let at =
        lines.iter().position(|l| l.starts_with("additivity")).unwrap_or_else(|| panic!("no additivity line:\n{all}"));
    lines[at..(at + 2).min(lines.len())].iter().map(|l| l.to_string()).collect()
}

#[tokio::test]
async fn on_the_demo_larger_sizes_gain_more_from_data_than_chinchillas_form_allows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = demo_ends_with_layers(dir.path());
    let lines = additivity_lines(&csv).await;
    // From the demo's ends: 2x32 falls 0.562 from D = 106,496 to 1,200,128, 5x160 0.636.
    assert!(lines[0].starts_with("additivity rejected:"), "{lines:?}");
    assert!(lines[0].contains("0.562 at N = 2.547e4") && lines[0].contains("0.636 at N = 1.547e6"), "{lines:?}");
    assert!(lines[0].contains("(6 sizes)"), "{lines:?}");
    // Chinchilla's own fall over the same D, B·(D_lo^−β − D_hi^−β) of its fit.
    assert!(lines[0].ends_with("the fit's fall is 0.629 at every N"), "{lines:?}");
    assert!(lines[1].starts_with("larger sizes gain more") && lines[1].contains("over-predict"), "{lines:?}");

    let o = ladder(&["--output", "json", "fit", "--csv", &csv, "--bootstrap", "20"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let slope = &v["report"]["additivity"]["slope"];
    let (value, lo) = (slope["value"].as_f64().expect("slope"), slope["lo"].as_f64().expect("lo"));
    assert!((0.03..0.06).contains(&value) && lo > 0.0, "{slope}");
    let fit_gain = v["report"]["additivity"]["fit_gain"].as_f64().expect("the fit's gain");
    assert!((fit_gain - 0.629).abs() < 5e-4, "{fit_gain}");
}

/// The fifth sealed target's fitted ends (State of the Union; `testdata/README.md`): the test
/// says what the sweep's lock held before the target was read.
#[tokio::test]
async fn on_a_second_corpus_it_says_what_the_lock_held() {
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/sotu_cooldown_ends.csv");
    let lines = additivity_lines(csv).await;
    assert!(lines[0].starts_with("additivity rejected: from D = 2.109e5 to 2.381e6"), "{lines:?}");
    assert!(lines[0].contains("(4 sizes): +0.094 [+0.050, +0.137] nats per decade of N"), "{lines:?}");
    assert!(lines[1].contains("expect Chinchilla to over-predict"), "{lines:?}");
}

#[tokio::test]
async fn on_ends_from_an_additive_law_it_holds() {
    // Chinchilla's form with the demo's scale, a grid of 5 sizes × 6 D, and a ±0.2% wobble.
    let mut body = String::from("N,D,loss\n");
    for (i, n) in [2.5e4, 5.7e4, 1.0e5, 3.4e5, 7.9e5].into_iter().enumerate() {
        for (j, d) in [1.06e5, 2.1e5, 4.2e5, 6.0e5, 8.5e5, 1.2e6].into_iter().enumerate() {
            let loss: f64 = 1.2 + 40.0 / f64::powf(n, 0.35) + 60.0 / f64::powf(d, 0.33);
            let wobble = 1.0 + 0.002 * (((3 * i + 5 * j) % 7) as f64 - 3.0) / 3.0;
            body.push_str(&format!("{n},{d},{:.6}\n", loss * wobble));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = write(dir.path(), "additive.csv", &body);
    let lines = additivity_lines(&csv).await;
    assert!(lines[0].starts_with("additivity holds:") && lines[0].contains("(5 sizes)"), "{lines:?}");
}
