//! Must show 6: each bad input gets a clear error naming what and where, and no panic.
mod common;

use std::path::Path;
use std::process::Command;

use ladder_trainer::tokenizer::Tokenizer;
use ladder_trainer::{Event, FailureKind, JobConfig, TrainerError, data, resolve_job, run};

const BIN: &str = env!("CARGO_BIN_EXE_ladder-train");

fn job_text(dir: &Path) -> String {
    let data = dir.join("data");
    if !data.exists() {
        common::markov_dataset(&data, 12, 5_000, 1_000);
    }
    common::tiny_job(&data, &dir.join("ckpt"), 12, 2, "")
}

fn resolve_err(text: &str) -> String {
    let cfg = JobConfig::from_toml(text, "job.toml").expect("parses");
    resolve_job(&cfg).expect_err("must be refused").to_string()
}

#[test]
fn d_model_not_divisible_by_heads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = job_text(tmp.path()).replace("n_heads = 2", "n_heads = 3");
    let e = resolve_err(&text);
    assert_eq!(e, "invalid config: model.n_heads: d_model 32 is not divisible by n_heads 3");
}

#[test]
fn batch_not_a_multiple_of_micro_batch() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = job_text(tmp.path()).replace("micro_batch = 8", "micro_batch = 12");
    let e = resolve_err(&text);
    assert_eq!(
        e,
        "invalid config: train.micro_batch: the batch of 32 sequences is not a multiple of the micro-batch 12"
    );
    let text = job_text(tmp.path()).replace("batch_tokens = 1024", "batch_tokens = 1000");
    assert!(resolve_err(&text).contains("train.batch_tokens: 1000 is not a positive multiple of n_ctx 32"));
}

#[test]
fn unknown_device() {
    let tmp = tempfile::tempdir().expect("tmp");
    for bad in ["tpu:0", "cuda:01"] {
        // Refused as the config is read, with its line and key.
        let text = job_text(tmp.path()).replace("device = \"cpu\"", &format!("device = {bad:?}"));
        let e = JobConfig::from_toml(&text, "job.toml").expect_err("refused").to_string();
        assert!(e.contains(&format!("unknown device {bad:?}")) && e.contains("device"), "{e}");
    }
    if !tch::Cuda::is_available() {
        let text = job_text(tmp.path()).replace("device = \"cpu\"", "device = \"cuda:0\"");
        let job = resolve_job(&common::parse(&text)).expect("valid config");
        let e = run(&job, None, &mut |_| {}).expect_err("no CUDA here");
        assert!(matches!(e, TrainerError::DeviceUnavailable(_)), "{e}");
    }
}

#[test]
fn unknown_key_and_wrong_type_name_line_and_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let line_of = |t: &str, key: &str| t.lines().position(|l| l.starts_with(key)).expect("key present") + 1;
    let text = job_text(tmp.path()).replace("lr = 0.01", "lr = 0.01\nlearning_rate = 0.1");
    let e = JobConfig::from_toml(&text, "job.toml").expect_err("refused").to_string();
    let line = line_of(&text, "learning_rate");
    assert!(e.contains("job.toml") && e.contains(&format!("line {line}")) && e.contains("learning_rate"), "{e}");
    let text = job_text(tmp.path()).replace("n_layer = 1", "n_layer = \"one\"");
    let e = JobConfig::from_toml(&text, "job.toml").expect_err("refused").to_string();
    let line = line_of(&text, "n_layer");
    assert!(e.contains(&format!("line {line}")) && e.contains("n_layer"), "{e}");
}

#[test]
fn empty_corpus_and_corpus_shorter_than_n_ctx() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let tok = Tokenizer::by_name("byte").expect("byte");
    let e = data::prepare(std::slice::from_ref(&empty), &tok, 0.1, false, &tmp.path().join("out"))
        .expect_err("refused")
        .to_string();
    assert_eq!(e, format!("data {}: the file is empty", empty.display()));

    let short = tmp.path().join("short.txt");
    std::fs::write(&short, "twenty bytes of text").expect("write");
    let out = tmp.path().join("short");
    data::prepare(&[short], &tok, 0.1, false, &out).expect("prepare works");
    let text = job_text(tmp.path())
        .replace(&tmp.path().join("data").display().to_string(), &out.display().to_string())
        .replace("vocab = 12", "vocab = 256");
    let job = resolve_job(&common::parse(&text)).expect("config is valid");
    let e = run(&job, None, &mut |_| {}).expect_err("refused").to_string();
    assert!(e.contains("train.bin") && e.contains("fewer than one window of n_ctx + 1 = 33"), "{e}");
}

#[test]
fn token_id_out_of_range() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = job_text(tmp.path());
    let train = tmp.path().join("data/train.bin");
    let mut toks: Vec<u16> = vec![1; 2000];
    toks[1234] = 12;
    common::write_tokens(&train, &toks);
    let job = resolve_job(&common::parse(&text)).expect("config is valid");
    let e = run(&job, None, &mut |_| {}).expect_err("refused").to_string();
    assert_eq!(e, format!("data {}: token id 12 at position 1234 is out of range for vocab 12", train.display()));
    // A truncated token file (odd byte count) is named too.
    std::fs::write(&train, [0u8; 101]).expect("write");
    let e = run(&job, None, &mut |_| {}).expect_err("refused").to_string();
    assert!(e.contains("101 bytes is not a whole number of uint16 tokens"), "{e}");
}

#[test]
fn binary_reports_invalid_config_without_panicking() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("job.toml");
    std::fs::write(&cfg, job_text(tmp.path()).replace("n_heads = 2", "n_heads = 5")).expect("write");
    let out = Command::new(BIN).args(["train", "--config"]).arg(&cfg).output().expect("spawn");
    assert_eq!(out.status.code(), Some(i32::from(FailureKind::InvalidConfig.exit_code())));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not divisible by n_heads 5") && !stderr.contains("panicked"), "{stderr}");
    let last = String::from_utf8_lossy(&out.stdout).lines().last().map(str::to_owned).expect("an event");
    match serde_json::from_str::<Event>(&last).expect("json") {
        Event::Failed { kind: FailureKind::InvalidConfig, message, .. } => assert!(message.contains("n_heads")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn divergence_ends_the_run_as_diverged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = job_text(tmp.path()).replace("lr = 0.01", "lr = 0.9").replace("steps = 2", "steps = 200");
    let text = text.replace("warmup_steps = 10", "warmup_steps = 0\ngrad_clip = 0.0\nbeta2 = 0.0");
    let job = resolve_job(&common::parse(&text)).expect("job");
    let outcome = run(&job, None, &mut |_| {}).expect("runs");
    // lr 0.9 with no clipping blows a 1-layer model up well within 200 steps.
    assert!(matches!(outcome, ladder_trainer::Outcome::Diverged { .. }), "{outcome:?}");
}
