//! `ladder fit` chooses, per law, whether it carries an irreducible loss E (by AICc on the points
//! it fits), on real points: the demo's 64 cooldown ends (`testdata/demo_cooldown_ends.csv`, eight
//! sizes × eight D). Holding out the largest size leaves seven, on which AICc keeps E for L(N), and
//! the refit predicts 5x160 within 2%. Without 2x32 (the demo's earlier seven sizes) the refit has
//! six sizes, on which E cannot pay for itself, and misses by more than 3%.
mod common;
use common::{DEMO_ENDS as DEMO, demo_ends_with_layers, ladder, write};

/// N of the demo's 2x32, the size the demo gained so that its hold-out refit keeps seven sizes.
const N_2X32: &str = "25472,";

/// The JSON report of `ladder fit --csv CSV --holdout 1` with `extra` flags.
async fn fit(csv: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--output", "json", "fit", "--csv", csv, "--holdout", "1", "--bootstrap", "40"];
    args.extend_from_slice(extra);
    let o = ladder(&args).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

/// Hold-out errors of `law` (its JSON name), at every D for a two-variable law.
fn errors(v: &serde_json::Value, law: &str) -> Vec<f64> {
    let all = v["report"]["holdout"].as_array().expect("hold-out rows");
    let mine = all.iter().filter(|h| h["law"].as_str() == Some(law));
    mine.map(|h| h["error"]["value"].as_f64().expect("error")).collect()
}

#[tokio::test]
async fn held_out_the_largest_size_is_predicted_within_2_percent_by_l_n_and_chinchilla() {
    let auto = fit(DEMO, &[]).await;
    let l_n = &auto["report"]["l_n"];
    let (with, without) = (l_n["choice"]["aicc_with"].as_f64(), l_n["choice"]["aicc_without"].as_f64());
    assert!(with.zip(without).is_some_and(|(a, b)| a < b - 4.0), "AICc {with:?} {without:?}");
    assert!(l_n["e"]["value"].as_f64().is_some_and(|e| e > 1.0 && e < 1.6), "E {}", l_n["e"]);
    // The refit on seven sizes keeps E too (it matches the refit with E forced), and predicts
    // 5x160 within 2%.
    let (refit, forced) = (errors(&auto, "L(N)"), errors(&fit(DEMO, &["--floor"]).await, "L(N)"));
    assert!(refit.len() == 1 && refit[0].abs() < 0.02, "L(N) hold-out {refit:?}");
    assert!(forced.len() == 1 && (refit[0] - forced[0]).abs() < 1e-9, "{refit:?} {forced:?}");
    let chinchilla = errors(&auto, "Chinchilla");
    assert_eq!(chinchilla.len(), 8);
    assert!(chinchilla.iter().all(|e| e.abs() < 0.02), "Chinchilla hold-out {chinchilla:?}");
    // L(N,D) keeps E; with it, 7 of the 8 D are within 2% (not the smallest: the form gives the
    // loss at fixed D a floor in N, which 104-step runs do not have).
    assert!(auto["report"]["l_nd"]["e"]["value"].as_f64().is_some(), "{}", auto["report"]["l_nd"]);
    let nd = errors(&auto, "L(N,D)");
    assert_eq!(nd.len(), 8);
    assert!(nd.iter().filter(|e| e.abs() < 0.02).count() >= 7, "L(N,D) hold-out {nd:?}");
}

#[tokio::test]
async fn with_one_size_fewer_the_refit_has_six_on_which_aicc_keeps_no_e() {
    let dir = tempfile::tempdir().expect("tmp");
    let all = std::fs::read_to_string(DEMO).expect("demo ends");
    let seven: String = all.lines().filter(|l| !l.starts_with(N_2X32)).map(|l| format!("{l}\n")).collect();
    assert_eq!(all.lines().count() - seven.lines().count(), 8, "2x32 has a cooldown end at each D");
    let seven = write(dir.path(), "seven_sizes.csv", &seven);
    // The six-size refit is Kaplan's form, as with `--no-floor`, and misses 5x160 by over 3%.
    let (auto, kaplan) = (fit(&seven, &[]).await, fit(&seven, &["--no-floor"]).await);
    assert!(auto["report"]["l_n"]["e"]["value"].as_f64().is_some(), "seven sizes keep E");
    let (refit, forced) = (errors(&auto, "L(N)"), errors(&kaplan, "L(N)"));
    assert!(forced.len() == 1 && forced[0] < -0.03, "L(N) without E {forced:?}");
    assert!(refit.len() == 1 && (refit[0] - forced[0]).abs() < 1e-9, "{refit:?} {forced:?}");
    // With E forced, the same refit predicts it within 2%.
    let e = errors(&fit(&seven, &["--floor"]).await, "L(N)");
    assert!(e.len() == 1 && e[0].abs() < 0.02, "L(N) with E {e:?}");
}

#[tokio::test]
async fn the_table_says_which_form_and_why_and_the_flags_conflict() {
    let o = ladder(&["fit", "--csv", DEMO, "--bootstrap", "20"]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("L(N) = E + (N_c/N)^α"), "{out}");
    assert!(out.contains("form with E by AICc ("), "{out}");
    assert!(out.contains("L(N,D) = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D"), "{out}");
    let o = ladder(&["fit", "--csv", DEMO, "--floor", "--no-floor"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-floor"));
}

#[tokio::test]
async fn each_law_names_the_fitted_point_it_misses_most() {
    let v = fit(DEMO, &[]).await;
    let worst = |law: &serde_json::Value| {
        let w = &law["worst"];
        (w["x"].as_f64(), w["x2"].as_f64(), w["error"].as_f64().unwrap_or(f64::NAN))
    };
    // L(N,D): 1x32 at D = 1.5e5, which ends above 1x16 there (2.3919 against 2.3698).
    let (n, d, e) = worst(&v["report"]["l_nd"]);
    assert_eq!((n, d), (Some(12768.0), Some(150528.0)));
    assert!((e + 0.0518).abs() < 0.002, "L(N,D) worst {e}");
    // Chinchilla: the smallest size at the smallest D, predicted 6% high.
    let (n, d, e) = worst(&v["report"]["chinchilla"]["fit"]);
    assert_eq!((n, d), (Some(3312.0), Some(106496.0)));
    assert!((e - 0.0618).abs() < 0.002, "Chinchilla worst {e}");
    // L(N) misses no size by 1%.
    let (_, none, e) = worst(&v["report"]["l_n"]);
    assert!(none.is_none() && e.abs() < 0.01, "L(N) worst {e}");
    let o = ladder(&["fit", "--csv", DEMO, "--bootstrap", "20"]).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("worst fitted point -5.") && out.contains("% at N = 1.277e4, D = 1.505e5"), "{out}");
}

/// The issue that asked for baselines measured persistence on these points by hand: "5x160's loss
/// equals 4x128's" misses by at most 1.00% at all eight D, worst +1.00% at D = 8.5e5; and
/// L(N,D)'s and Chinchilla's worst misses (+3.47%, −1.39%) exceed it. The report says so.
#[tokio::test]
async fn on_the_demo_persistence_misses_by_at_most_one_percent_and_the_report_sets_each_law_beside_it() {
    let v = fit(DEMO, &[]).await;
    let rows: Vec<&serde_json::Value> =
        v["report"]["holdout"].as_array().expect("rows").iter().filter(|h| h["law"] == "Chinchilla").collect();
    assert_eq!(rows.len(), 8);
    let persistence: Vec<(f64, f64)> = rows
        .iter()
        .map(|h| {
            let (p, actual) =
                (h["baselines"]["persistence"].as_f64().expect("persistence"), h["actual"].as_f64().expect("actual"));
            (h["x2"].as_f64().expect("D"), (p - actual) / actual)
        })
        .collect();
    let worst = persistence.iter().copied().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).expect("a row");
    assert!((worst.1 - 0.0100).abs() < 5e-5, "worst persistence miss {worst:?}");
    assert!((worst.0 / 8.5e5 - 1.0).abs() < 0.02, "at D {}", worst.0);

    let o = ladder(&["fit", "--csv", DEMO, "--holdout", "1", "--bootstrap", "40"]).await;
    let all = String::from_utf8_lossy(&o.stdout);
    let out = &all[all.find("Hold-out:").expect("a hold-out section")..];
    let ratio = |law: &str| -> f64 {
        let at = out.lines().position(|l| l.trim_start().starts_with(law)).unwrap_or_else(|| panic!("{law}:\n{out}"));
        let line = out.lines().nth(at + 1).expect("the baseline line");
        line.split("ratio ").nth(1).and_then(|r| r.split(',').next()).and_then(|r| r.parse().ok()).expect("a ratio")
    };
    // On the demo's design neither two-variable law beats persistence: the hold-out is too near.
    assert!(ratio("L(N,D)") > 1.0 && ratio("Chinchilla") > 1.0, "{out}");
}

/// `--backtest` refits on the 3 to 7 smallest sizes and predicts every larger one: its rows at 7
/// sizes are the `--holdout 1` rows, each row's distance is log10 of N over the largest fitted,
/// and the table bins the rows by that distance.
#[tokio::test]
async fn the_backtest_predicts_every_larger_size_from_each_prefix_of_sizes() {
    let o =
        ladder(&["--output", "json", "fit", "--csv", DEMO, "--backtest", "--holdout", "1", "--bootstrap", "40"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let rows = v["report"]["backtest"].as_array().expect("backtest rows");
    let sizes: Vec<f64> = {
        let mut n: Vec<f64> = rows.iter().map(|r| r["x"].as_f64().expect("N")).collect();
        n.sort_by(f64::total_cmp);
        n.dedup();
        n
    };
    // Sizes 4 to 8 are predicted (the smallest 3 are always fitted).
    assert_eq!(sizes.len(), 5, "{sizes:?}");
    let chinchilla = |k: u64| rows.iter().filter(move |r| r["law"] == "Chinchilla" && r["sizes_fitted"] == k);
    // From 3 sizes, Chinchilla predicts 5 sizes × 8 D; from 7, the largest size's 8.
    assert_eq!(chinchilla(3).count(), 40);
    assert_eq!(chinchilla(7).count(), 8);
    // The JSON carries each law's record beside the rows: Chinchilla's from 0.5 decades on
    // counts its rows there.
    let record = v["report"]["backtest_record"].as_array().expect("the backtest's record");
    let far = record.iter().find(|b| b["law"] == "Chinchilla" && b["from"] == 0.5).expect("Chinchilla from 0.5");
    let far_rows =
        rows.iter().filter(|r| r["law"] == "Chinchilla" && r["decades_n"].as_f64().is_some_and(|d| d >= 0.5));
    assert_eq!(far["rows"].as_u64(), Some(far_rows.count() as u64), "{far}");
    assert_eq!(far["high"].as_u64().zip(far["low"].as_u64()).map(|(h, l)| h + l), far["rows"].as_u64(), "{far}");
    let holdout: Vec<f64> = errors(&v, "Chinchilla");
    let at7: Vec<f64> = chinchilla(7).map(|r| r["error"]["value"].as_f64().expect("error")).collect();
    assert_eq!(holdout, at7, "the backtest at 7 sizes is the hold-out of 1");
    for r in rows {
        let (n, dn) = (r["x"].as_f64().expect("N"), r["decades_n"].as_f64().expect("decades"));
        let k = r["sizes_fitted"].as_u64().expect("k") as usize;
        assert!(dn > 0.0, "{r}");
        // The largest fitted is the k-th smallest of the sweep's 8 sizes (3312 the smallest).
        let largest_fitted = n / 10f64.powf(dn);
        assert!(largest_fitted < n && largest_fitted >= 3312.0, "{r}");
        assert!((3..=7).contains(&k), "{r}");
    }

    let o = ladder(&["fit", "--csv", DEMO, "--backtest", "--bootstrap", "40"]).await;
    let all = String::from_utf8_lossy(&o.stdout);
    let out = &all[all.find("Backtest:").expect("a backtest section")..];
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Chinchilla") && l.contains("1.00-"))
        .expect("a ≥ 1 decade bin");
    let preds: usize = line.split_whitespace().nth(2).and_then(|p| p.parse().ok()).expect("a count");
    let json_count =
        rows.iter().filter(|r| r["law"] == "Chinchilla" && r["decades_n"].as_f64().is_some_and(|d| d >= 1.0)).count();
    assert_eq!(preds, json_count, "{line}");
    // The JSON carries the table's bins too: the ≥ 1 decade bin (upper edge ∞, null) counts
    // the same rows.
    let bins = v["report"]["backtest_bins"].as_array().expect("the backtest's bins");
    let far = bins.iter().find(|b| b["law"] == "Chinchilla" && b["from"] == 1.0).expect("Chinchilla's ≥ 1 decade bin");
    assert_eq!((far["rows"].as_u64(), far["to"].is_null()), (Some(json_count as u64), true), "{far}");
}

/// The line after the backtest's table that names Chinchilla's 95% intervals as too narrow
/// from 0.5 decades of N on, and whether one names L(N, D)'s, for `ladder fit --csv CSV
/// --backtest`.
async fn too_narrow(csv: &str) -> (String, bool) {
    let o = ladder(&["fit", "--csv", csv, "--backtest"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let all = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = all.lines().filter(|l| l.contains("too narrow at these distances")).map(str::trim).collect();
    let chinchilla = lines.iter().find(|l| l.starts_with("Chinchilla:")).unwrap_or_else(|| panic!("{lines:?}"));
    (chinchilla.to_string(), lines.iter().any(|l| l.starts_with("L(N,D):")))
}

/// The backtest says in words whose intervals are too narrow far out and which way that law
/// errs, since a mean |error| hides the sign: on the demo's ends with every size, Chinchilla
/// errs low; without the two 1-layer sizes (given a `layers` column), it errs high. L(N, D)'s
/// intervals hold with every size.
#[tokio::test]
async fn the_backtest_names_the_laws_whose_intervals_miss_and_the_way_they_err() {
    let (chinchilla, nd) = too_narrow(DEMO).await;
    assert!(
        chinchilla.contains("of 88 predictions") && chinchilla.contains("of them below the measured loss"),
        "{chinchilla}"
    );
    assert!(!nd, "L(N, D)'s intervals hold");

    // The same ends with each size's depth, the 1-layer sizes left out.
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = demo_ends_with_layers(dir.path());
    let (chinchilla, _) = too_narrow(&csv).await;
    assert!(
        chinchilla.contains("of 32 predictions") && chinchilla.contains("of them above the measured loss"),
        "{chinchilla}"
    );
}
