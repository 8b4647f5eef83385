//! The real `ladder` binary against a real coordinator on 127.0.0.1:0: every bad input of the
//! issue gets a clear message and its exit code, never a panic; the listings and the CSV fit
//! give values, not just "it ran".
use std::process::Output;

use ladder_coordinator::auth::Role;
use ladder_coordinator::{Config, Store, serve};
use tokio_util::sync::CancellationToken;

mod common;
use common::{ladder, text, trainer, write};

const TOKEN: &str = "correct-horse-battery";

/// Asserts a clean failure: the exit code, a message containing `needle`, no panic.
fn refused(o: &Output, code: i32, needle: &str) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(code), "stdout {out}\nstderr {err}");
    assert!(err.starts_with("ladder: error: "), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

async fn coordinator(token: Option<&str>) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let tokens = token.map(|t| (Role::Admin, t.to_string())).into_iter().collect();
    let cfg = Config { tokens, ..Config::default() };
    let s = stop.clone();
    let store = Store::in_memory().expect("store");
    tokio::spawn(async move { serve(store, cfg, listener, s).await.expect("serve") });
    (format!("http://{addr}"), stop)
}

#[tokio::test]
async fn an_unreachable_coordinator_is_named_with_exit_5() {
    // Port 1 on loopback: nothing listens there.
    let o = ladder(&["--coordinator", "http://127.0.0.1:1", "status"]).await;
    refused(&o, 5, "cannot reach the coordinator at http://127.0.0.1:1");
    let o = ladder(&["--coordinator", "not a url", "workers"]).await;
    refused(&o, 2, "--coordinator");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_required_and_checked() {
    let (addr, stop) = coordinator(Some(TOKEN)).await;
    let o = ladder(&["--coordinator", &addr, "--token", "wrong", "status"]).await;
    refused(&o, 4, "invalid token");
    let o = ladder(&["--coordinator", &addr, "status"]).await;
    refused(&o, 4, "requires a token");
    let o = ladder(&["--coordinator", &addr, "--token", TOKEN, "--output", "json", "status"]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v, serde_json::json!([]));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_sweep_exits_3_and_a_bad_spec_names_its_line() {
    let (addr, stop) = coordinator(None).await;
    let o = ladder(&["--coordinator", &addr, "status", "no-such-sweep"]).await;
    refused(&o, 3, "no-such-sweep");
    let o = ladder(&["--coordinator", &addr, "export", "no-such-sweep"]).await;
    refused(&o, 3, "no-such-sweep");
    let dir = tempfile::tempdir().expect("tmp");
    let spec = write(
        dir.path(),
        "bad.toml",
        "name = \"x\"\ndataset = \"d\"\n[model]\nn_ctx = 64\nshapes = [[2, 64]]\nbogus = 1\n",
    );
    let o = ladder(&["--coordinator", &addr, "submit", &spec]).await;
    refused(&o, 2, "bad.toml");
    let (_, err) = text(&o);
    assert!(err.contains("line 6") || err.contains(":6"), "names the line: {err}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn data_submit_jobs_workers_and_cancel_over_the_wire() {
    let (addr, stop) = coordinator(None).await;
    let dir = tempfile::tempdir().expect("tmp");
    let bins = dir.path().join("bins");
    std::fs::create_dir(&bins).expect("mkdir");
    let ids = |n: u16| (0..n).flat_map(|i| (i % 97).to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(bins.join("train.bin"), ids(20_000)).expect("train");
    std::fs::write(bins.join("val.bin"), ids(2_000)).expect("val");
    let b = bins.display().to_string();
    // Without meta.json the vocabulary must be given; with it, token ids are checked against it.
    refused(&ladder(&["--coordinator", &addr, "data", "add", "toy", &b]).await, 2, "--vocab");
    refused(&ladder(&["--coordinator", &addr, "data", "add", "toy", &b, "--vocab", "50"]).await, 2, "toy");
    let o = ladder(&["--coordinator", &addr, "--output", "json", "data", "add", "toy", &b, "--vocab", "128"]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let ds: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(ds["train_tokens"], 20_000);
    assert_eq!(ds["vocab"], 128);

    let spec = write(
        dir.path(),
        "s.toml",
        "name = \"toy\"\ndataset = \"toy\"\nseeds = [0, 1]\n[model]\nn_ctx = 32\nd_head = 16\nshapes = [[1, 32], [2, 64]]\n[train]\nbatch_tokens = 1024\nsteps = 50\nlr = 1e-3\n",
    );
    let o = ladder(&["--coordinator", &addr, "submit", &spec]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(text(&o).0.contains("toy"), "{:?}", text(&o));
    let o = ladder(&["--coordinator", &addr, "--output", "json", "jobs", "toy"]).await;
    let jobs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let jobs = jobs.as_array().expect("array");
    assert_eq!(jobs.len(), 4);
    assert!(jobs.iter().all(|j| j["state"] == "queued" && j["total_steps"] == 50));
    // Expansion order: shapes outermost, then seeds; N exact is 12·L·d² plus biases and norms.
    assert_eq!(jobs[2]["n_kaplan"], 12 * 2 * 64 * 64);
    let exact = jobs[2]["n"].as_u64().expect("n");
    assert!(exact > 12 * 2 * 64 * 64 && exact < 12 * 2 * 64 * 64 * 21 / 20, "{exact}");
    let o = ladder(&["--coordinator", &addr, "jobs", "toy"]).await;
    let table = text(&o).0;
    assert!(table.starts_with("JOB") && table.contains("ETA") && table.lines().count() == 5, "{table}");
    let o = ladder(&["--coordinator", &addr, "--output", "json", "workers"]).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json"), serde_json::json!([]));
    let o = ladder(&["--coordinator", &addr, "--output", "json", "cancel", "toy"]).await;
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (s["state"].clone(), s["jobs_cancelled"].clone()),
        (serde_json::json!("cancelled"), serde_json::json!(4))
    );
    // A cancelled sweep with no finished run has nothing to fit.
    let o = ladder(&["--coordinator", &addr, "fit", "toy"]).await;
    refused(&o, 6, "too few points");
    let (_, err) = text(&o);
    assert!(err.contains("job 1: cancelled"), "says why each job was left out: {err}");
    stop.cancel();
}

#[tokio::test]
async fn malformed_csv_is_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        ("nonnumeric.csv", "N,loss\n1e6,3.0\n1e7,abc\n", ":3", "column `loss`: \"abc\" is not a number"),
        ("fields.csv", "N,loss\n1e6,3.0,7\n", ":2", "3 fields, the header has 2"),
        ("noloss.csv", "N,L\n1e6,3.0\n", ":1", "no `loss` column"),
        ("negative.csv", "N,loss\n-5,3.0\n", ":2", "must be finite and positive"),
        ("empty.csv", "", "empty.csv", "empty file"),
    ];
    for (name, body, place, msg) in cases {
        let p = write(dir.path(), name, body);
        let o = ladder(&["fit", "--csv", &p]).await;
        refused(&o, 2, msg);
        assert!(
            text(&o).1.contains(&format!("{name}{}", if place.starts_with(':') { place } else { "" })),
            "{:?}",
            text(&o)
        );
    }
}

#[tokio::test]
async fn too_few_points_for_a_fit_exit_6() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(dir.path(), "two.csv", "N,loss\n1e6,3.0\n1e7,2.7\n");
    let o = ladder(&["fit", "--csv", &p]).await;
    refused(&o, 6, "too few points");
    assert!(text(&o).1.contains("L(N): 2 distinct N; needs ≥ 3"), "{:?}", text(&o));
}

#[tokio::test]
async fn csv_fit_recovers_a_power_law_and_predicts() {
    let dir = tempfile::tempdir().expect("tmp");
    // L = (8.8e13/N)^0.076 exactly: the fit must return those constants and predict from them.
    let mut body = String::from("N,loss\n");
    for k in 0..8 {
        let n = 1e5 * 10f64.powf(k as f64 * 0.5);
        body.push_str(&format!("{n},{}\n", (8.8e13 / n).powf(0.076)));
    }
    let p = write(dir.path(), "ln.csv", &body);
    let o = ladder(&["--output", "json", "fit", "--csv", &p, "--predict", "N=1e10", "--bootstrap", "50"]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let alpha = v["report"]["l_n"]["alpha"]["value"].as_f64().expect("alpha");
    let n_c = v["report"]["l_n"]["x_c"]["value"].as_f64().expect("N_c");
    assert!((alpha - 0.076).abs() < 1e-9 && (n_c / 8.8e13 - 1.0).abs() < 1e-6, "{alpha} {n_c}");
    let pred = v["predictions"]["L(N)"]["value"].as_f64().expect("prediction");
    assert!((pred - (8.8e13f64 / 1e10).powf(0.076)).abs() < 1e-9, "{pred}");
    let o = ladder(&["fit", "--csv", &p, "--predict", "Q=3"]).await;
    refused(&o, 2, "the keys are N, D, C and S");
    let o = ladder(&["fit", "--csv", &p, "--budget", "1e21"]).await;
    refused(&o, 6, "--budget needs");
}

#[tokio::test]
async fn completions_for_bash() {
    let o = ladder(&["completions", "bash"]).await;
    assert_eq!(o.status.code(), Some(0));
    let s = text(&o).0;
    assert!(s.contains("_ladder()") && s.contains("submit") && s.contains("local"), "{}", &s[..s.len().min(300)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_runs_a_spec_end_to_end_fits_and_plots() {
    let trainer = trainer();
    let dir = tempfile::tempdir().expect("tmp");
    // A text with short-range structure a tiny model learns within a few dozen steps.
    let mut rng = 7u64;
    let mut body = String::new();
    let words = ["the ", "whale ", "sea ", "ship ", "captain ", "white ", "deep ", "harpoon "];
    while body.len() < 120_000 {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        body.push_str(words[(rng >> 60) as usize % words.len()]);
    }
    let corpus = write(dir.path(), "corpus.txt", &body);
    let spec = write(
        dir.path(),
        "tiny.toml",
        "name = \"tiny\"\ndataset = \"toy\"\n[model]\nn_ctx = 32\nd_head = 8\nshapes = [[1, 8], [1, 16], [2, 24], [2, 32]]\n[train]\nbatch_tokens = 512\nmicro_batch = 4\nsteps = 60\nlr = 3e-3\nwarmup_steps = 5\neval_every = 10\neval_windows = 16\ncheckpoint_every = 30\n[resources]\ndevice = \"cpu\"\nthreads = 1\n",
    );
    let data_dir = dir.path().join("state").display().to_string();
    let plots = dir.path().join("plots");
    let o = ladder(&[
        "local",
        &spec,
        "--dataset",
        &format!("toy={corpus}"),
        "--tokenizer",
        "byte",
        "--data-dir",
        &data_dir,
        "--out",
        &plots.display().to_string(),
        "--trainer",
        &trainer.display().to_string(),
    ])
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout {out}\nstderr {err}");
    assert!(out.contains("jobs used: 1-4"), "{out}");
    assert!(out.contains("L(N) = (N_c/N)^α"), "{out}");
    for name in ["fig2_loss_vs_tokens", "fig1_loss_vs_compute", "fig1_l_of_n", "b_simple", "fig3_n_opt"] {
        let png = std::fs::read(plots.join(format!("{name}.png"))).unwrap_or_else(|e| panic!("{name}.png: {e}"));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is a PNG");
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("<text"), "{name}.svg has labels");
    }
}

#[tokio::test]
async fn holdout_scores_the_largest_size_and_warns_beyond_the_fitted_range() {
    let dir = tempfile::tempdir().expect("tmp");
    // An exact power law: refitted without the largest N, it still predicts that N exactly.
    let mut body = String::from("N,B,S,loss\n");
    for k in 0..8 {
        let n = 1e5 * 10f64.powf(k as f64 * 0.5);
        body.push_str(&format!("{n},4096,1000,{}\n", (8.8e13 / n).powf(0.076)));
    }
    let p = write(dir.path(), "ln.csv", &body);
    let args = ["--output", "json", "fit", "--csv", &p, "--holdout", "1", "--predict", "N=1e10", "--bootstrap", "50"];
    let o = ladder(&args).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let h = &v["report"]["holdout"][0];
    assert_eq!(h["law"], "L(N)");
    assert!((h["x"].as_f64().expect("x") / (1e5 * 10f64.powf(3.5)) - 1.0).abs() < 1e-9, "{h}");
    assert!(h["error"]["value"].as_f64().expect("error").abs() < 1e-9, "{h}");
    // 1e10 is 1.5 decades above the largest N fitted (10^8.5).
    let w = v["warnings"][0].as_str().expect("a warning");
    assert!(w.contains("L(N)") && w.contains("1.50 decades above"), "{w}");

    let o = ladder(&["fit", "--csv", &p, "--holdout", "8"]).await;
    refused(&o, 2, "must leave at least one of the 8 model sizes");
    let o = ladder(&["fit", "--csv", &p, "--law", "bcrit"]).await;
    refused(&o, 2, "1 batch size(s) (4096): B_crit needs a batch-size axis");
    let o = ladder(&["fit", "--csv", &p, "--law", "nd"]).await;
    refused(&o, 6, "L(N,D) was asked for and could not be fitted");
}

#[tokio::test(flavor = "multi_thread")]
async fn branch_blocks_submit_as_pending_jobs_and_bad_ones_name_file_line_and_key() {
    let (addr, stop) = coordinator(None).await;
    let dir = tempfile::tempdir().expect("tmp");
    let bins = dir.path().join("bins");
    std::fs::create_dir(&bins).expect("mkdir");
    let ids = |n: u16| (0..n).flat_map(|i| (i % 97).to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(bins.join("train.bin"), ids(20_000)).expect("train");
    std::fs::write(bins.join("val.bin"), ids(2_000)).expect("val");
    let o =
        ladder(&["--coordinator", &addr, "data", "add", "toy", &bins.display().to_string(), "--vocab", "128"]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let trunk = "name = \"br\"\ndataset = \"toy\"\n[model]\nn_ctx = 32\nd_head = 16\nshapes = [[1, 32]]\n[train]\nbatch_tokens = 256\ntokens = 25600\nlr = 1e-3\nschedule = \"constant\"\n";
    // Line 12 onwards: the branch blocks.
    let cases = [
        (
            "past.toml",
            "[[branch]]\nfrom = \"main\"\nbatch = { at_tokens = [51200], multipliers = [1, 2], window_tokens = 2560, min_steps = 1 }\n",
            "line 14",
            "branch[0].batch.at_tokens",
        ),
        (
            "unknown.toml",
            "[[branch]]\nfrom = \"trunk\"\ncooldown = { to_tokens = [12800] }\n",
            "line 13",
            "branch[0].from",
        ),
        (
            "cycle.toml",
            "[[branch]]\nname = \"a\"\nfrom = \"b\"\ncooldown = { to_tokens = [12800] }\n[[branch]]\nname = \"b\"\nfrom = \"a\"\ncooldown = { to_tokens = [12800] }\n",
            "a cycle",
            "branch[",
        ),
        (
            "kb.toml",
            "[[branch]]\nfrom = \"main\"\nbatch = { at_tokens = [12800], multipliers = [1, 1.5], window_tokens = 2560, min_steps = 1 }\n",
            "not a multiple of n_ctx 32",
            "branch[0].batch.multipliers",
        ),
    ];
    for (name, branch, place, key) in cases {
        let spec = write(dir.path(), name, &format!("{trunk}{branch}"));
        let o = ladder(&["--coordinator", &addr, "submit", &spec]).await;
        refused(&o, 2, key);
        let (_, err) = text(&o);
        assert!(err.contains(name) && err.contains(place), "names {name} and {place}: {err}");
    }
    // A good one: the trunk queued, its two cooldowns pending until its checkpoint is stored.
    let spec = write(
        dir.path(),
        "good.toml",
        &format!("{trunk}[[branch]]\nfrom = \"main\"\ncooldown = {{ to_tokens = [12800, 25600] }}\n"),
    );
    let o = ladder(&["--coordinator", &addr, "submit", &spec]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = ladder(&["--coordinator", &addr, "--output", "json", "jobs", "br"]).await;
    let jobs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let states: Vec<&str> =
        jobs.as_array().expect("array").iter().map(|j| j["state"].as_str().expect("state")).collect();
    assert_eq!(states, ["queued", "pending", "pending"]);
    assert_eq!(jobs[1]["branch"]["parent"], jobs[0]["id"]);
    assert_eq!(jobs[1]["branch"]["kind"], "cooldown");
    let o = ladder(&["--coordinator", &addr, "jobs", "br"]).await;
    let table = text(&o).0;
    assert!(table.contains("FROM") && table.contains(&format!("{}@", jobs[0]["id"])), "{table}");
    stop.cancel();
}

#[tokio::test]
async fn local_help_lists_only_what_local_uses_and_every_flag_has_help() {
    let o = ladder(&["local", "--help"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for flag in ["--coordinator", "--token", "--tls-ca", "--tls-cert", "--tls-key"] {
        assert!(!out.contains(&format!("{flag} ")), "`ladder local --help` lists {flag}:\n{out}");
    }
    for flag in ["--slots", "--http-listen", "--serve", "--data-dir"] {
        assert!(out.contains(flag), "`ladder local --help` lacks {flag}:\n{out}");
    }
    // Every option line of every command's help carries a description after its name.
    for cmd in ["status", "submit", "fit", "plot", "logs", "local", "export", "data"] {
        let o = ladder(&[cmd, "--help"]).await;
        let (out, _) = text(&o);
        for line in out.lines().filter(|l| l.trim_start().starts_with("--")) {
            let (_, desc) = line.trim_start().split_once("  ").unwrap_or((line, ""));
            assert!(
                !desc.trim().is_empty() && !desc.trim().starts_with('['),
                "`ladder {cmd} --help`: no help for {line:?}"
            );
        }
    }
}

/// `ladder fit` on a sweep still running answers from the coordinator's live fits; with options
/// the live fit does not take (here --holdout) it fits here as before.
#[tokio::test]
async fn fit_on_a_running_sweep_answers_from_the_live_fits() {
    use ladder_proto::pb;
    use ladder_testkit::server::{Server, acquire, register_worker, report};
    let spec = "name = \"live\"\ndataset = \"tiny\"\nseeds = [0]\n[model]\nn_ctx = 16\nd_head = 8\n\
                shapes = [[1, 16], [1, 32], [2, 32], [2, 48]]\n[train]\nbatch_tokens = 64\nsteps = 40\nlr = 0.01\n\
                eval_every = 10\n[resources]\ndevice = \"cpu\"\n";
    let (mut s, w0) = Server::with_sweep(std::time::Duration::from_secs(60), Some(spec)).await;
    let jobs = ladder_testkit::procs::jobs(&mut s.users, "live").await;
    let n_of = |id: u64| jobs.iter().find(|j| j.id == id).map(|j| j.n_params as f64).expect("job");
    let mut workers = vec![w0];
    for i in 1..4 {
        workers.push(register_worker(&mut s.workers, &format!("w{i}")).await);
    }
    for (k, w) in workers.iter().enumerate() {
        let a = acquire(&mut s.workers, w).await.expect("a job for each worker");
        // L = (1e8/N)^0.1 at the end, twice that at the start.
        let end = (1e8 / n_of(a.job_id)).powf(0.1);
        let mut events: Vec<pb::AttemptEvent> = (1..=40u64)
            .map(|step| {
                let loss = end * (1.0 + (40 - step) as f64 / 39.0);
                let p = pb::MetricPoint {
                    step,
                    tokens: step * 64,
                    flops: 6.0 * n_of(a.job_id) * (step * 64) as f64,
                    train_loss: loss,
                    val_loss: (step % 10 == 0).then_some(loss),
                    ..Default::default()
                };
                pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Metrics(p)) }
            })
            .collect();
        // Three finish; the fourth stays running.
        if k < 3 {
            events.push(pb::AttemptEvent {
                kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished { step: 40, reason: "steps".into() })),
            });
        }
        s.workers.report_events(report(w, &a, events)).await.expect("report");
    }
    let addr = format!("http://{}", s.addr());
    let o = ladder(&["--coordinator", &addr, "fit", "live"]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("live fits"), "not from the live fits: {err}");
    assert!(out.contains("still running"), "the running job is not listed as left out:\n{out}");
    let alpha = out
        .lines()
        .skip_while(|l| !l.starts_with("L(N) ="))
        .find_map(|l| l.trim().strip_prefix("α_N").and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok()))
        .expect("α of L(N)");
    assert!((alpha - 0.1).abs() < 0.01, "α_N {alpha} from the live fits, expected 0.1\n{out}");
    let o = ladder(&["--coordinator", &addr, "fit", "live", "--holdout", "1"]).await;
    let (_, err) = text(&o);
    assert!(!err.contains("live fits"), "--holdout must fit here: {err}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_of_text_files_is_tokenized_file_by_file() {
    let (addr, stop) = coordinator(None).await;
    let dir = tempfile::tempdir().expect("tmp");
    let books = dir.path().join("books");
    std::fs::create_dir(&books).expect("mkdir");
    std::fs::write(books.join("a.txt"), "a".repeat(2000)).expect("a");
    std::fs::write(books.join("b.txt"), "b".repeat(1000)).expect("b");
    std::fs::write(books.join("README"), "not a book").expect("readme");
    let trainer = trainer().display().to_string();
    let b = books.display().to_string();
    let args = [
        "--coordinator",
        &addr,
        "--output",
        "json",
        "data",
        "add",
        "books",
        &b,
        "--tokenizer",
        "byte",
        "--trainer",
        &trainer,
    ];
    let o = ladder(&args).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let ds: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    // Each .txt file keeps its last 0.5% for validation (10 + 5 bytes); the README is not read.
    assert_eq!((ds["train_tokens"].as_u64(), ds["val_tokens"].as_u64()), (Some(2985), Some(15)), "{ds}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let e = empty.display().to_string();
    refused(&ladder(&["--coordinator", &addr, "data", "add", "none", &e, "--tokenizer", "byte"]).await, 2, "*.txt");
    stop.cancel();
}
