//! Issue 20: a branch starts from its parent's checkpoint and counts from the root. A branch that
//! changes nothing continues exactly as the parent does, bit for bit on the CPU; a cooldown
//! branch follows the parent until its branch point and then decays.
mod common;

use ladder_trainer::{Event, resolve_job, run};

/// Every point's step, tokens, and the bits of its losses, norms and learning rate.
fn trace(text: &str) -> Vec<(u64, u64, [u64; 6])> {
    let job = resolve_job(&common::parse(text)).expect("job");
    let mut out = Vec::new();
    run(&job, None, &mut |e| {
        if let Event::Metrics(m) = e {
            let bits = [
                m.train_loss.to_bits(),
                m.val_loss.unwrap_or(f64::NAN).to_bits(),
                m.grad_norm.to_bits(),
                m.gns_small_sq.to_bits(),
                m.gns_big_sq.to_bits(),
                m.lr.to_bits(),
            ];
            out.push((m.step, m.tokens, bits));
        }
    })
    .expect("runs");
    out
}

#[test]
fn a_branch_that_changes_nothing_equals_its_parents_continuation_bit_for_bit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 16, 40_000, 4_096);
    let extra = "at = [20]\n[eval]\nevery = 10\nwindows = 8\n";
    let parent_text = common::tiny_job(&data, &tmp.path().join("parent"), 16, 40, extra)
        .replace("warmup_steps = 10", "warmup_steps = 10\nschedule = \"constant\"");
    let parent = trace(&parent_text);
    assert_eq!(parent.len(), 40);
    let from = tmp.path().join("parent").join("step-000000020");
    assert!(from.join("MANIFEST.json").is_file(), "the parent checkpointed at its branch point");
    let branch_text = parent_text
        .replace(&tmp.path().join("parent").display().to_string(), &tmp.path().join("branch").display().to_string())
        + &format!("[branch]\nstep = 20\ntokens = 20480\ndir = \"{}\"\n", from.display());
    let branch = trace(&branch_text);
    assert_eq!(branch.len(), 20, "the branch's curve holds the steps after its branch point");
    assert_eq!(branch[0].0, 21);
    assert_eq!(branch[0].1, 21 * 1024, "tokens count from the root");
    assert_eq!(&parent[20..], &branch[..], "bit for bit the parent's own steps 21..40");
}

#[test]
fn a_cooldown_branch_decays_from_its_branch_point_and_learns_more_than_its_parent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    common::markov_dataset(&data, 16, 40_000, 4_096);
    let extra = "at = [40]\n[eval]\nevery = 10\nwindows = 32\n";
    let parent_text = common::tiny_job(&data, &tmp.path().join("parent"), 16, 60, extra)
        .replace("warmup_steps = 10", "warmup_steps = 10\nschedule = \"constant\"")
        // At 0.03 the constant-rate parent sits on its noise floor, which a cooldown removes; at
        // 0.01 a rotary model is still descending at step 60, and decaying costs it progress.
        .replace("lr = 0.01", "lr = 0.03");
    let parent = trace(&parent_text);
    let from = tmp.path().join("parent").join("step-000000040");
    let cool = parent_text
        .replace(&tmp.path().join("parent").display().to_string(), &tmp.path().join("cool").display().to_string())
        .replace(
            "schedule = \"constant\"",
            "schedule = \"wsd\"\ndecay_start = 40\ndecay_shape = \"linear\"\nmin_lr_ratio = 0.0",
        )
        + &format!("[branch]\nstep = 40\ntokens = 40960\ndir = \"{}\"\n", from.display());
    let c = trace(&cool);
    assert_eq!(c.len(), 20);
    let lr = |p: &(u64, u64, [u64; 6])| f64::from_bits(p.2[5]);
    assert!((lr(&c[0]) - 0.03 * 19.0 / 20.0).abs() < 1e-12, "the first cooldown step: {}", lr(&c[0]));
    assert_eq!(lr(&c[19]), 0.0, "the last reaches the floor");
    let val = |p: &(u64, u64, [u64; 6])| f64::from_bits(p.2[1]);
    assert!(val(&c[19]) < val(&parent[59]), "the cooldown ends lower: {} vs {}", val(&c[19]), val(&parent[59]));
}
