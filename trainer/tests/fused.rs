//! Fused multi-model training on the CPU: K jobs of one shape trained as one batched model give
//! each job's curve, noise-scale statistics and checkpoints exactly as K separate runs would, bit
//! for bit; a member that stops early leaves the stack without disturbing the others; a fused
//! member's checkpoint resumes as a single run; mismatched jobs are refused with the difference.
mod common;

use std::path::Path;

use std::sync::Mutex;

use ladder_trainer::{Controls, Event, Job, MetricPoint, resolve_job, run, run_fused};

/// libtorch's seed and thread count are process-wide: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// Everything but wall-clock throughput, as exact bit patterns.
fn key(m: &MetricPoint) -> Vec<u64> {
    let mut k = vec![m.step, m.tokens, m.train_loss.to_bits(), m.lr.to_bits(), m.grad_norm.to_bits()];
    k.extend([m.gns_small_sq.to_bits(), m.gns_big_sq.to_bits(), m.flops.to_bits()]);
    k.push(m.val_loss.map_or(0, f64::to_bits));
    k.push(m.b_simple.map_or(0, f64::to_bits));
    k
}

/// Member configs: 2 layers of d 32 (sizes multiples of 16 floats), 4 micro-batches a step.
fn job(data: &Path, ckpt: &Path, seed: u64, lr: f64, steps: u64) -> Job {
    let text = common::tiny_job(data, ckpt, 12, steps, "every = 4\nkeep = 10\n[eval]\nevery = 3\nwindows = 16\n")
        .replace("threads = 2", "threads = 1")
        .replace("n_layer = 1", "n_layer = 2")
        .replace("seed = 3", &format!("seed = {seed}"))
        .replace("lr = 0.01", &format!("lr = {lr}"));
    resolve_job(&common::parse(&text)).expect("job")
}

fn curve_of(events: &[Event]) -> Vec<Vec<u64>> {
    events.iter().filter_map(|e| if let Event::Metrics(m) = e { Some(key(m)) } else { None }).collect()
}

fn model_sha(ckpt: &Path, step: u64) -> String {
    let manifest =
        std::fs::read_to_string(ckpt.join(format!("step-{step:09}")).join("MANIFEST.json")).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    v["files"].as_array().expect("files").iter().map(|f| f["sha256"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn fused_members_equal_separate_runs_bit_for_bit() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 12, 50_000, 4_096);
    // Seeds and learning rates differ; member 2 stops after 6 steps and leaves the stack.
    let specs = [(1u64, 0.01, 12u64), (2, 0.004, 12), (3, 0.02, 6)];
    let sep: Vec<Job> = specs
        .iter()
        .enumerate()
        .map(|(i, &(s, lr, n))| job(&data, &tmp.path().join(format!("sep-{i}")), s, lr, n))
        .collect();
    let fused: Vec<Job> = specs
        .iter()
        .enumerate()
        .map(|(i, &(s, lr, n))| job(&data, &tmp.path().join(format!("fused-{i}")), s, lr, n))
        .collect();

    let mut separate = Vec::new();
    for j in &sep {
        let mut evs = Vec::new();
        run(j, None, &mut |e| evs.push(e.clone())).expect("separate run");
        separate.push(evs);
    }
    let mut per_member: Vec<Vec<Event>> = vec![Vec::new(); fused.len()];
    let outcomes =
        run_fused(&fused, &[None, None, None], &Controls::default(), &mut |i, e| per_member[i].push(e.clone()))
            .expect("fused run");
    assert!(outcomes.iter().all(Option::is_some), "{outcomes:?}");

    for (i, (s, f)) in separate.iter().zip(&per_member).enumerate() {
        let (cs, cf) = (curve_of(s), curve_of(f));
        assert_eq!(cs.len(), specs[i].2 as usize, "member {i} steps");
        assert_eq!(cs, cf, "member {i}: the fused curve differs from the separate run");
        // Its checkpoints hold the same bytes.
        for step in (4..=specs[i].2).step_by(4) {
            assert_eq!(
                model_sha(&tmp.path().join(format!("sep-{i}")), step),
                model_sha(&tmp.path().join(format!("fused-{i}")), step),
                "member {i} checkpoint at step {step}"
            );
        }
        assert!(matches!(f.last(), Some(Event::Profile(_))), "member {i} ends with its profile");
        let finals = f.iter().filter(|e| matches!(e, Event::Finished { .. })).count();
        assert_eq!(finals, 1, "member {i} has one final event");
    }
    // Members really differ: different seeds give different curves.
    assert_ne!(curve_of(&separate[0]), curve_of(&separate[1]));

    // A fused member's step-4 checkpoint resumes as a single run and continues exactly.
    let resumed = job(&data, &tmp.path().join("resumed-0"), 1, 0.01, 12);
    let mut evs = Vec::new();
    let dir = tmp.path().join("fused-0").join("step-000000004");
    run(&resumed, Some(&dir), &mut |e| evs.push(e.clone())).expect("resumed run");
    assert_eq!(curve_of(&evs), curve_of(&per_member[0])[4..].to_vec());
}

#[test]
fn a_dropped_member_leaves_and_the_rest_are_unchanged() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 12, 20_000, 2_048);
    let alone = job(&data, &tmp.path().join("alone"), 5, 0.01, 5);
    let mut evs = Vec::new();
    run(&alone, None, &mut |e| evs.push(e.clone())).expect("run");
    let fused = [job(&data, &tmp.path().join("f0"), 5, 0.01, 5), job(&data, &tmp.path().join("f1"), 6, 0.01, 5)];
    let controls = Controls::default();
    controls.drop_member(1);
    let mut per: Vec<Vec<Event>> = vec![Vec::new(); 2];
    let out = run_fused(&fused, &[None, None], &controls, &mut |i, e| per[i].push(e.clone())).expect("fused");
    assert!(out[0].is_some() && out[1].is_none(), "{out:?}");
    assert_eq!(curve_of(&per[0]), curve_of(&evs));
    assert!(curve_of(&per[1]).is_empty(), "a dropped member reports no step");
}

#[test]
fn jobs_that_cannot_share_a_batched_model_are_refused() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 12, 20_000, 2_048);
    let a = job(&data, &tmp.path().join("a"), 1, 0.01, 4);
    let text = common::tiny_job(&data, &tmp.path().join("b"), 12, 4, "").replace("d_model = 32", "d_model = 48");
    let b = resolve_job(&common::parse(&text)).expect("job");
    let e = run_fused(&[a.clone(), b], &[None, None], &Controls::default(), &mut |_, _| {}).expect_err("refused");
    let msg = e.to_string();
    assert!(msg.contains("member 0 and member 1 differ in model shape (2x32"), "{msg}");
    assert!(msg.contains("vs 1x48"), "{msg}");
    let same_dir = a.clone();
    let e = run_fused(&[a, same_dir], &[None, None], &Controls::default(), &mut |_, _| {}).expect_err("refused");
    assert!(e.to_string().contains("checkpoint.dir"), "{e}");
}
