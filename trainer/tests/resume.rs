//! Must show 2: a run killed with SIGKILL and resumed from its checkpoint gives a curve
//! bitwise-identical to a run that never stopped (CPU). Also: corrupt checkpoints are refused.
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use ladder_trainer::{Event, MetricPoint};

const BIN: &str = env!("CARGO_BIN_EXE_ladder-train");

fn events(stdout: &[u8]) -> Vec<Event> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect()
}

fn metrics(evs: &[Event]) -> Vec<MetricPoint> {
    evs.iter().filter_map(|e| if let Event::Metrics(m) = e { Some(m.clone()) } else { None }).collect()
}

/// Everything but wall-clock throughput, as exact bit patterns.
fn key(m: &MetricPoint) -> Vec<u64> {
    let mut k = vec![m.step, m.tokens, m.train_loss.to_bits(), m.lr.to_bits(), m.grad_norm.to_bits()];
    k.extend([m.gns_small_sq.to_bits(), m.gns_big_sq.to_bits(), m.flops.to_bits()]);
    k.push(m.val_loss.map_or(0, f64::to_bits));
    k.push(m.b_simple.map_or(0, f64::to_bits));
    k
}

fn write_config(dir: &Path, name: &str, data: &Path, ckpt: &Path) -> std::path::PathBuf {
    let text = common::tiny_job(data, ckpt, 12, 24, "every = 8\nkeep = 10\n[eval]\nevery = 4\nwindows = 16\n");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn killed_and_resumed_run_is_bitwise_identical() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 12, 50_000, 4_096);

    // Reference: uninterrupted.
    let cfg_a = write_config(tmp.path(), "a.toml", &data, &tmp.path().join("ckpt-a"));
    let out = Command::new(BIN).args(["train", "--config"]).arg(&cfg_a).output().expect("spawn");
    assert!(out.status.success(), "reference run failed: {}", String::from_utf8_lossy(&out.stderr));
    let reference = metrics(&events(&out.stdout));
    assert_eq!(reference.len(), 24);

    // Killed with SIGKILL right after its step-8 checkpoint is reported.
    let ckpt_b = tmp.path().join("ckpt-b");
    let cfg_b = write_config(tmp.path(), "b.toml", &data, &ckpt_b);
    let mut child =
        Command::new(BIN).args(["train", "--config"]).arg(&cfg_b).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut before = Vec::new();
    let mut resume_from = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("read line");
        match serde_json::from_str::<Event>(&line).expect("event") {
            Event::Metrics(m) => before.push(m),
            Event::Checkpoint { step: 8, path, .. } => {
                child.kill().expect("SIGKILL");
                resume_from = Some(path);
                break;
            }
            _ => {}
        }
    }
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the child must have been killed");
    let resume_from = resume_from.expect("a checkpoint at step 8");

    let out = Command::new(BIN)
        .args(["train", "--config"])
        .arg(&cfg_b)
        .args(["--resume", &resume_from])
        .output()
        .expect("spawn resume");
    assert!(out.status.success(), "resumed run failed: {}", String::from_utf8_lossy(&out.stderr));
    let evs = events(&out.stdout);
    match &evs[0] {
        Event::Started(info) => assert_eq!(info.resumed_from_step, Some(8)),
        other => panic!("first event {other:?}"),
    }
    let after = metrics(&evs);
    assert_eq!(after.first().map(|m| m.step), Some(9), "resume continues at step 9");

    // The curve as a coordinator keeps it: keyed by step, a replay overwrites nothing.
    let mut curve: Vec<MetricPoint> = before.into_iter().filter(|m| m.step <= 8).collect();
    curve.extend(after);
    assert_eq!(curve.len(), reference.len());
    for (a, b) in reference.iter().zip(&curve) {
        assert_eq!(key(a), key(b), "step {} differs: {a:?} vs {b:?}", a.step);
    }
}

#[test]
fn corrupt_truncated_or_incomplete_checkpoints_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 12, 20_000, 2_048);
    let ckpt = tmp.path().join("ckpt");
    let text = common::tiny_job(&data, &ckpt, 12, 2, "");
    let job = ladder_trainer::resolve_job(&common::parse(&text)).expect("job");
    ladder_trainer::run(&job, None, &mut |_| {}).expect("run");
    let good = ladder_trainer::checkpoint::latest(&ckpt).expect("final checkpoint");
    assert!(ladder_trainer::checkpoint::load(&good).is_ok());

    let copy = |name: &str| {
        let dst = tmp.path().join(name);
        std::fs::create_dir_all(&dst).expect("mkdir");
        for f in std::fs::read_dir(&good).expect("ls") {
            let f = f.expect("entry").path();
            std::fs::copy(&f, dst.join(f.file_name().expect("name"))).expect("copy");
        }
        dst
    };
    let err = |dir: &Path| ladder_trainer::checkpoint::load(dir).expect_err("must be refused").to_string();

    let flipped = copy("flipped");
    let model = flipped.join("model.safetensors");
    let mut bytes = std::fs::read(&model).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&model, bytes).expect("write");
    let e = err(&flipped);
    assert!(e.contains("model.safetensors fails its sha256 check"), "{e}");

    let truncated = copy("truncated");
    let opt = truncated.join("optimizer.safetensors");
    let bytes = std::fs::read(&opt).expect("read");
    std::fs::write(&opt, &bytes[..bytes.len() - 100]).expect("write");
    let e = err(&truncated);
    assert!(e.contains("optimizer.safetensors has") && e.contains("truncated"), "{e}");

    let incomplete = copy("incomplete");
    std::fs::remove_file(incomplete.join("MANIFEST.json")).expect("rm");
    let e = err(&incomplete);
    assert!(e.contains("not a complete checkpoint"), "{e}");

    // The binary reports it as an invalid-input failure, exit code 2, without a panic.
    let cfg = tmp.path().join("job.toml");
    std::fs::write(&cfg, &text).expect("write");
    let out =
        Command::new(BIN).args(["train", "--config"]).arg(&cfg).arg("--resume").arg(&flipped).output().expect("spawn");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    match events(&out.stdout).last() {
        Some(Event::Failed { kind, message, .. }) => {
            assert_eq!(*kind, ladder_trainer::FailureKind::InvalidConfig);
            assert!(message.contains("sha256"), "{message}");
        }
        other => panic!("expected a failed event, got {other:?}"),
    }
}
