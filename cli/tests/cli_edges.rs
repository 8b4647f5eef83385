//! The real `ladder` binary at its edges: Epoch's Chinchilla file fits through `fit --csv`, TLS
//! options with an http:// address are refused, `data add` prepares into a private temp folder,
//! `ladder local` refuses a job its slots cannot hold, and stops within 10 s on Ctrl-C or
//! SIGTERM, losing no acknowledged point.
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use ladder_proto::pb;
use tokio::io::{AsyncBufReadExt, BufReader};

mod common;
use common::{ladder, ladder_cmd, text, trainer, write};

#[tokio::test]
async fn fit_csv_reads_epochs_chinchilla_file_and_finds_its_constants() {
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/chinchilla_epoch_svg_extracted.csv");
    let o = ladder(&[
        "--output",
        "json",
        "fit",
        "--csv",
        csv,
        "--exclude-top",
        "5",
        "--law",
        "chinchilla",
        "--bootstrap",
        "20",
    ])
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout {out}\nstderr {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let fit = &v["report"]["chinchilla"]["fit"];
    let get = |k: &str| fit[k].as_f64().unwrap_or_else(|| panic!("no {k} in {fit}"));
    // Epoch AI's replication of Hoffmann et al. (2022), without the five highest losses.
    assert!((get("alpha") - 0.3473).abs() <= 0.003, "alpha {}", get("alpha"));
    assert!((get("beta") - 0.3672).abs() <= 0.005, "beta {}", get("beta"));
    assert!((get("e") - 1.817).abs() <= 0.01, "E {}", get("e"));
    assert_eq!(fit["runs"].as_u64(), Some(240));
    assert!(v["report"]["source"].as_str().is_some_and(|s| s.contains("D = C/(6N)")), "{}", v["report"]["source"]);
    // The table names the columns it read.
    let o = ladder(&["fit", "--csv", csv, "--law", "chinchilla", "--bootstrap", "20"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    // An explicit mapping over the recognised names.
    let o = ladder(&["fit", "--csv", csv, "--columns", "N=Model Size,C=Training FLOP,loss=nope"]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[tokio::test]
async fn tls_options_with_an_http_address_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = write(dir.path(), "ca.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    let o = ladder(&["status", "--coordinator", "http://127.0.0.1:9", "--tls-ca", &ca]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "stdout {out}\nstderr {err}");
    assert!(err.contains("https://") && err.contains("plaintext"), "{err}");
}

#[tokio::test]
async fn data_add_prepares_into_a_private_temp_folder() {
    let dir = tempfile::tempdir().expect("tmp");
    let record = dir.path().join("args");
    // A trainer that records where it was told to write, and fails.
    let fake = write(
        dir.path(),
        "fake-train.sh",
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > {}\nstat -c %a \"$(for a in \"$@\"; do p=$n; n=$a; [ \"$p\" = --out ] && echo $a; done | head -1)\" >> {} 2>&1\nexit 1\n",
            record.display(),
            record.display()
        ),
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let corpus = write(dir.path(), "c.txt", "some text");
    let s =
        ladder_testkit::server::start(ladder_coordinator::Store::in_memory().expect("store"), Duration::from_secs(30))
            .await;
    let url = format!("http://{}", s.addr());
    let child = ladder_cmd(&["data", "add", "toy", &corpus, "--trainer", &fake, "--coordinator", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().expect("pid");
    let o = child.wait_with_output().await.expect("waits");
    assert_ne!(o.status.code(), Some(0));
    let args = std::fs::read_to_string(&record).expect("the trainer ran");
    let lines: Vec<&str> = args.lines().collect();
    let out = lines.iter().position(|a| *a == "--out").map(|i| lines[i + 1]).expect("--out");
    assert!(!out.contains(&format!("ladder-data-{pid}-toy")), "a predictable name: {out}");
    assert_eq!(lines.last().copied(), Some("700"), "the folder is private: {args}");
    assert!(!Path::new(out).exists(), "removed after use: {out}");
    s.shutdown().await;
}

/// A spec of `jobs` seeds that run far longer than the test waits.
fn long_spec(dir: &Path, device: &str) -> String {
    write(
        dir,
        "long.toml",
        &format!(
            "name = \"long\"\ndataset = \"toy\"\nseeds = [0, 1]\n[model]\nn_ctx = 32\nd_head = 8\nshapes = [[1, 16]]\n[train]\nbatch_tokens = 256\nmicro_batch = 4\nsteps = 100000\nlr = 3e-3\nwarmup_steps = 5\neval_every = 1000\neval_windows = 4\ncheckpoint_every = 40\n[resources]\ndevice = \"{device}\"\nthreads = 1\n"
        ),
    )
}

fn corpus(dir: &Path) -> String {
    let words = ["the ", "whale ", "sea ", "ship ", "captain ", "white ", "deep ", "harpoon "];
    let (mut rng, mut body) = (7u64, String::new());
    while body.len() < 60_000 {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        body.push_str(words[(rng >> 60) as usize % words.len()]);
    }
    write(dir, "corpus.txt", &body)
}

/// `ladder local SPEC` on the toy corpus with one CPU slot, run to its end (at most 120 s).
async fn local_once(dir: &Path, spec: &str) -> Output {
    let data = dir.join("state").display().to_string();
    let t = trainer().display().to_string();
    let toy = format!("toy={}", corpus(dir));
    let args = [
        "local",
        spec,
        "--dataset",
        &toy,
        "--tokenizer",
        "byte",
        "--data-dir",
        &data,
        "--trainer",
        &t,
        "--slots",
        "cpu",
    ];
    tokio::time::timeout(Duration::from_secs(120), ladder(&args)).await.expect("no hang")
}

#[tokio::test]
async fn local_refuses_a_job_its_slots_cannot_hold_and_submits_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = long_spec(dir.path(), "cuda");
    let o = local_once(dir.path(), &spec).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "stdout {out}\nstderr {err}");
    assert!(err.contains("job 1 of the spec") && err.contains("\"cuda\"") && err.contains("cpu"), "{err}");
}

#[tokio::test]
async fn local_refuses_a_per_width_rate_outside_zero_one_naming_file_line_key_and_shape() {
    let dir = tempfile::tempdir().expect("tmp");
    let long = std::fs::read_to_string(long_spec(dir.path(), "cpu")).expect("spec");
    let spec = write(dir.path(), "wide.toml", &long.replace("lr = 3e-3", "lr = { value = 0.5, at_d_model = 64 }"));
    let line = long.lines().position(|l| l.starts_with("lr = ")).expect("lr line") + 1;
    let o = local_once(dir.path(), &spec).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "stdout {out}\nstderr {err}");
    let want = format!("wide.toml: line {line}: train.lr: 0.5 · 64 / 16 is outside (0, 1) for the shape [1, 16]");
    assert!(err.contains(&want), "{err}");
}

/// Runs `ladder local` on the long spec until each job has acknowledged `beyond` points, sends `signal`,
/// and returns the time it took to exit, its exit code, and the steps acknowledged before.
async fn interrupt(dir: &Path, signal: &str, beyond: u64) -> (Duration, Option<i32>, Vec<(u64, u64)>) {
    let spec = long_spec(dir, "cpu");
    let data = dir.join("state").display().to_string();
    let t = trainer().display().to_string();
    let toy = format!("toy={}", corpus(dir));
    let args = [
        "local",
        &spec,
        "--dataset",
        &toy,
        "--tokenizer",
        "byte",
        "--data-dir",
        &data,
        "--trainer",
        &t,
        "--slots",
        "cpu,cpu",
    ];
    let mut child =
        ladder_cmd(&args).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn().expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("ladder local starts")
            .expect("read")
            .expect("a line");
        if let Some(rest) = line.strip_prefix("ladder local: coordinator at ") {
            break rest.split(',').next().expect("url").to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut users = pb::ladder_client::LadderClient::connect(url).await.expect("connect");
    // Wait until both jobs run and have stored a few dozen points (a checkpoint among them).
    let deadline = Instant::now() + Duration::from_secs(120);
    let acked = loop {
        let jobs = users
            .list_jobs(pb::ListJobsRequest { sweep: "long".into() })
            .await
            .map(|r| r.into_inner().jobs)
            .unwrap_or_default();
        if jobs.len() == 2 && jobs.iter().all(|j| j.step >= beyond && j.checkpoint_step > 0) {
            break jobs.iter().map(|j| (j.id, j.step)).collect::<Vec<_>>();
        }
        assert!(Instant::now() < deadline, "the jobs did not get going: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pid = child.id().expect("pid").to_string();
    let sent = Instant::now();
    let kill = std::process::Command::new("kill").args([signal, &pid]).status().expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("exits").expect("status");
    (sent.elapsed(), status.code(), acked)
}

/// The stored curve of every job: whole from step 1, and at least as long as acknowledged.
async fn assert_kept(dir: &Path, acked: &[(u64, u64)]) {
    use ladder_testkit::server::start;
    let store = ladder_coordinator::open_store(&dir.join("state").join("coordinator")).expect("the store opens");
    let s = start(store, Duration::from_secs(30)).await;
    let mut users = s.users.clone();
    for &(job, step) in acked {
        let c = users
            .get_curve(pb::GetCurveRequest { job_id: job, after_step: 0, limit: 0 })
            .await
            .expect("curve")
            .into_inner();
        let steps: Vec<u64> = c.points.iter().map(|p| p.step).collect();
        assert!(steps.len() as u64 >= step, "job {job}: {} points kept, {step} were acknowledged", steps.len());
        assert!(steps.iter().enumerate().all(|(i, s)| *s == i as u64 + 1), "job {job}: a hole in {steps:?}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_stops_within_10_s_on_ctrl_c_and_on_sigterm_losing_no_acknowledged_point() {
    let _serial = ladder_testkit::procs::SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tmp");
    let (took, code, acked) = interrupt(dir.path(), "-INT", 45).await;
    assert_eq!(code, Some(130), "Ctrl-C exits 130");
    assert!(took < Duration::from_secs(10), "Ctrl-C took {took:?}");
    assert_kept(dir.path(), &acked).await;
    // Again on the same state: the sweep resumes, then SIGTERM.
    let most = acked.iter().map(|a| a.1).max().unwrap_or(0);
    let (took, code, acked_again) = interrupt(dir.path(), "-TERM", most + 20).await;
    assert_eq!(code, Some(130), "SIGTERM exits 130");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    for ((job, before), (job2, after)) in acked.iter().zip(&acked_again) {
        assert_eq!(job, job2);
        assert!(after >= before, "job {job} resumed behind what it had: {after} < {before}");
    }
    assert_kept(dir.path(), &acked_again).await;
}
