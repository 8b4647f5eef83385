//! Issue 20: `[[branch]]` blocks in a sweep spec. A trunk per size with cooldowns at several D
//! and batch windows at several points plans into branches after their parents, each parent
//! checkpointing where its branches fork; every bad input names its line and key.
use ladder_core::branch::BranchKind;
use ladder_core::job::Schedule;
use ladder_core::sweep::{DatasetFacts, SweepPlan, plan};

fn facts(_: &str) -> Option<DatasetFacts> {
    Some(DatasetFacts { vocab: 256, train_tokens: 1_000_000 })
}

const TRUNK: &str = r#"name = "br"
dataset = "d"
[model]
n_ctx = 32
d_head = 8
shapes = [[1, 16], [2, 32]]
[train]
batch_tokens = 256
micro_batch = 2
tokens = 102400
lr = 0.004
warmup_steps = 10
schedule = "constant"
eval_every = 50
"#;

const BRANCHES: &str = r#"
[[branch]]
name = "cool"
from = "main"
cooldown = { to_tokens = [25600, 51200, 102400], fraction = 0.2, shape = "1-sqrt" }

[[branch]]
from = "main"
shapes = [[2, 32]]
batch = { at_tokens = [25600, 76800], multipliers = [1, 2, 4], window_tokens = 12800, min_steps = 1 }
"#;

fn ok(spec: &str) -> SweepPlan {
    plan(spec, "spec.toml", facts).unwrap_or_else(|e| panic!("{e}"))
}

fn err(spec: &str) -> String {
    plan(spec, "spec.toml", facts).expect_err("refused").to_string()
}

#[test]
fn trunks_with_cooldowns_and_batch_windows_plan_after_their_parents() {
    let p = ok(&format!("{TRUNK}{BRANCHES}"));
    // 2 trunks, 2×3 cooldowns, 1 size × 2 points × 3 multipliers.
    assert_eq!(p.jobs.len(), 2 + 6 + 6);
    for (i, j) in p.jobs.iter().enumerate() {
        let Some(parent) = j.parent else { continue };
        assert!(parent < i, "job {i} comes after its parent {parent}");
        let b = j.branch.expect("a branch says where it forks");
        let trunk = &p.jobs[parent];
        assert!(trunk.config.checkpoint.at.contains(&b.step), "the parent checkpoints at step {}", b.step);
        let start = j.config.branch.as_ref().expect("the config starts from the parent");
        assert_eq!((start.step, start.tokens), (b.step, b.step * 256));
        match b.kind {
            BranchKind::Cooldown { to_tokens } => {
                // 80 % of D on the trunk, the last 20 % a 1-sqrt cooldown to D.
                assert_eq!(b.tokens, to_tokens * 4 / 5);
                assert_eq!(j.config.train.schedule, Schedule::Wsd);
                assert_eq!(j.config.train.decay_start, Some(b.step));
                assert_eq!(j.total_steps, to_tokens / 256);
                assert!((j.lr - trunk.lr).abs() < 1e-15);
            }
            BranchKind::Batch { k, window_tokens } => {
                assert_eq!(window_tokens, 12800);
                assert_eq!(j.config.train.batch_tokens as f64, 256.0 * k);
                assert!((j.lr - trunk.lr * k.sqrt()).abs() < 1e-12, "√k learning rate");
                assert_eq!(j.total_steps, b.step + (12800f64 / (256.0 * k)).ceil() as u64);
                assert_eq!(j.shape.n_layer, 2, "only the shapes the block names");
            }
        }
        // A branch's cost is its own steps only.
        assert!(j.cost_flops < trunk.cost_flops);
    }
    let at: Vec<u64> = p.jobs[1].config.checkpoint.at.clone();
    assert_eq!(at, vec![80, 100, 160, 300, 320], "cooldowns start at steps 80, 160, 320; batch points at 100, 300");
}

#[test]
fn a_branch_point_past_its_parent_is_refused_with_line_and_key() {
    let e = err(&format!(
        "{TRUNK}\n[[branch]]\nfrom = \"main\"\nbatch = {{ at_tokens = [200000], multipliers = [1, 2], window_tokens = 1000, min_steps = 1 }}\n"
    ));
    assert!(e.contains("spec.toml") && e.contains("line 18") && e.contains("branch[0].batch.at_tokens"), "{e}");
    assert!(e.contains("200000 tokens is not within the parent's run"), "{e}");
}

#[test]
fn an_unknown_parent_and_a_cycle_are_refused() {
    let e = err(&format!("{TRUNK}\n[[branch]]\nfrom = \"trunk\"\ncooldown = {{ to_tokens = [25600] }}\n"));
    assert!(
        e.contains("branch[0].from") && e.contains("no grid or branch block is named \"trunk\"") && e.contains("main"),
        "{e}"
    );
    let cycle = format!(
        "{TRUNK}\n[[branch]]\nname = \"a\"\nfrom = \"b\"\ncooldown = {{ to_tokens = [25600] }}\n[[branch]]\nname = \"b\"\nfrom = \"a\"\ncooldown = {{ to_tokens = [25600] }}\n"
    );
    let e = err(&cycle);
    assert!(e.contains("a cycle"), "{e}");
}

#[test]
fn a_batch_multiplier_off_the_context_length_is_refused() {
    let e = err(&format!(
        "{TRUNK}\n[[branch]]\nfrom = \"main\"\nbatch = {{ at_tokens = [25600], multipliers = [1, 1.5, 0.03], window_tokens = 1000, min_steps = 1 }}\n"
    ));
    assert!(e.contains("branch[0].batch.multipliers") && e.contains("not a multiple of n_ctx 32"), "{e}");
}

#[test]
fn branches_fork_only_from_constant_learning_rates() {
    let e = err(&format!("{}{BRANCHES}", TRUNK.replace("schedule = \"constant\"", "schedule = \"cosine\"")));
    assert!(e.contains("branch[0].from") && e.contains("constant"), "{e}");
}

#[test]
fn a_batch_window_shorter_than_40_steps_is_refused() {
    // At k = 4 (B = 1024), 12,800 tokens is 12 steps: inside Adam's memory of the trunk.
    let e = err(&format!(
        "{TRUNK}\n[[branch]]\nfrom = \"main\"\nbatch = {{ at_tokens = [25600], multipliers = [1, 2, 4], window_tokens = 12800 }}\n"
    ));
    assert!(e.contains("branch[0].batch.window_tokens") && e.contains("12 optimizer steps"), "{e}");
    assert!(e.contains("at least 40") && e.contains("window_tokens ≥ 40960"), "{e}");
    // Long enough at every k, it plans; and the k = 1 window is evaluated at least ten times.
    let p = ok(&format!(
        "{TRUNK}\n[[branch]]\nfrom = \"main\"\nbatch = {{ at_tokens = [25600], multipliers = [1, 2, 4], window_tokens = 40960 }}\n"
    ));
    let k1 = p
        .jobs
        .iter()
        .find(|j| matches!(j.branch.map(|b| b.kind), Some(BranchKind::Batch { k, .. }) if k == 1.0))
        .expect("k = 1");
    assert_eq!(k1.config.eval.every, 16, "160 steps at k = 1: every 16");
}

/// Issue 32: an optional short re-warmup for batch windows, at most half the shortest window.
#[test]
fn a_batch_rewarmup_ramps_from_the_trunks_rate_and_is_bounded_by_the_window() {
    let spec = |steps: u64| {
        format!(
            "{TRUNK}\n[[branch]]\nfrom = \"main\"\nshapes = [[2, 32]]\nbatch = {{ at_tokens = [25600], multipliers = [1, 4], window_tokens = 12800, min_steps = 1, rewarmup_steps = {steps} }}\n"
        )
    };
    // k = 4: 1024-token batches, 12 steps; at most 6 steps of re-warmup.
    let p = ok(&spec(6));
    let windows: Vec<_> =
        p.jobs.iter().filter(|j| matches!(j.branch.map(|b| b.kind), Some(BranchKind::Batch { .. }))).collect();
    assert_eq!(windows.len(), 2);
    for w in &windows {
        assert_eq!(w.config.train.rewarmup_steps, Some(6));
        assert_eq!(w.config.train.rewarmup_from_lr, Some(0.004), "from the trunk's rate");
    }
    let k4 = windows.iter().find(|w| w.config.train.batch_tokens == 1024).expect("the k = 4 window");
    let s = ladder_core::schedule::LrSchedule::of(&k4.config.resolve(Some(256)).unwrap_or_else(|e| panic!("{e}")));
    let first = k4.branch.expect("a branch").step;
    assert!((s.at(first) - (0.004 + 0.004 / 6.0)).abs() < 1e-12, "one sixth of the way to 2·0.004: {}", s.at(first));
    assert!((s.at(first + 5) - 0.008).abs() < 1e-12, "√4 · 0.004 after the ramp: {}", s.at(first + 5));

    let e = err(&spec(7));
    assert!(e.contains("branch[0].batch.rewarmup_steps") && e.contains("give at most 6"), "{e}");
    assert!(
        ok(&format!("{TRUNK}{BRANCHES}")).jobs.iter().all(|j| j.config.train.rewarmup_steps.is_none()),
        "none by default"
    );
}
