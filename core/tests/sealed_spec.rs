//! Issue 32: sealed targets in a sweep spec. A `[[grid]]` block with `sealed = true` plans jobs
//! marked as targets (and a branch of a target is a target); a target that is also a fitted run
//! is refused with the key at fault.
use ladder_core::sweep::{DatasetFacts, SweepPlan, plan};

fn facts(_: &str) -> Option<DatasetFacts> {
    Some(DatasetFacts { vocab: 256, train_tokens: 10_000_000 })
}

const BASE: &str = r#"name = "sealed"
dataset = "d"
[model]
n_ctx = 32
d_head = 8
shapes = [[1, 16]]
[train]
batch_tokens = 256
tokens = 102400
lr = 0.004

[[grid]]
name = "fitted"
shapes = [[1, 16], [1, 32], [2, 32]]
dataset_tokens = [25600, 51200]
tokens = 51200
schedule = "constant"
"#;

fn ok(spec: &str) -> SweepPlan {
    plan(spec, "spec.toml", facts).unwrap_or_else(|e| panic!("{e}"))
}

fn err(spec: &str) -> String {
    plan(spec, "spec.toml", facts).expect_err("refused").to_string()
}

#[test]
fn a_sealed_block_plans_targets_and_only_those() {
    let p = ok(&format!("{BASE}\n[[grid]]\nshapes = [[4, 64]]\nseeds = [0, 1]\nsealed = true\n"));
    assert_eq!(p.jobs.len(), 6 + 2);
    let targets: Vec<_> = p.jobs.iter().filter(|j| j.sealed).collect();
    assert_eq!(targets.len(), 2, "{:?}", p.jobs.iter().map(|j| j.sealed).collect::<Vec<_>>());
    assert!(targets.iter().all(|t| t.shape.n_layer == 4 && t.shape.d_model == 64), "the 4x64 block is sealed");
    assert!(p.jobs.iter().filter(|j| j.shape.n_layer != 4).all(|j| !j.sealed), "the fitted block is not");
    // `sealed = false` is the default, said out loud.
    let p = ok(&format!("{BASE}\n[[grid]]\nshapes = [[4, 64]]\nsealed = false\n"));
    assert!(p.jobs.iter().all(|j| !j.sealed));
}

#[test]
fn a_target_that_is_also_a_fitted_run_is_refused() {
    let e = err(&format!(
        "{BASE}\n[[grid]]\nshapes = [[2, 32]]\ndataset_tokens = 51200\ntokens = 51200\nschedule = \"constant\"\nsealed = true\n"
    ));
    assert!(e.contains("grid[1].sealed") && e.contains("both a sealed target and a fitted run"), "{e}");
}

#[test]
fn a_branch_of_a_target_is_a_target() {
    let spec = format!(
        "{BASE}\n[[grid]]\nname = \"t\"\nshapes = [[4, 64]]\nschedule = \"constant\"\nsealed = true\n\n\
         [[branch]]\nfrom = \"t\"\ncooldown = {{ to_tokens = [51200] }}\n\n\
         [[branch]]\nfrom = \"fitted\"\ncooldown = {{ to_tokens = [51200] }}\n"
    );
    let p = ok(&spec);
    let sealed: Vec<_> = p.jobs.iter().filter(|j| j.sealed).collect();
    assert_eq!(sealed.len(), 2, "the target trunk and its cooldown");
    assert!(sealed.iter().all(|j| j.shape.n_layer == 4), "only the 4x64 trunk's jobs");
    assert!(sealed.iter().any(|j| j.branch.is_some()), "its cooldown is sealed too");
    assert_eq!(p.jobs.iter().filter(|j| j.branch.is_some() && !j.sealed).count(), 6, "the fitted cooldowns are not");
}

#[test]
fn sealed_must_be_a_boolean() {
    let e = err(&format!("{BASE}\n[[grid]]\nshapes = [[4, 64]]\nsealed = \"yes\"\n"));
    assert!(e.contains("line 2") || e.contains("sealed") || e.contains("bool"), "{e}");
}

/// A demo spec's targets, planned on the Gutenberg corpus: how many fitted and sealed jobs it
/// plans, the tokens per parameter of its largest fitted run (most N·D), and each target
/// cooldown's shape, tokens and decades of compute beyond that run.
struct Demo {
    fitted: usize,
    sealed: usize,
    tokens_per_parameter: f64,
    targets: Vec<((i64, i64), f64, f64)>,
}

fn demo(spec: &str, origin: &str) -> Demo {
    let p = plan(spec, origin, |_| Some(DatasetFacts { vocab: 256, train_tokens: 11_000_000 }))
        .unwrap_or_else(|e| panic!("{e}"));
    let d_of = |j: &ladder_core::sweep::JobPlan| j.total_steps as f64 * j.config.train.batch_tokens as f64;
    let nd = |j: &ladder_core::sweep::JobPlan| j.accounting.n as f64 * d_of(j);
    let fitted: Vec<_> = p.jobs.iter().filter(|j| !j.sealed && j.branch.is_some()).collect();
    let largest = fitted.iter().max_by(|a, b| nd(a).total_cmp(&nd(b))).expect("a fitted run");
    let targets = p
        .jobs
        .iter()
        .filter(|j| j.sealed && j.branch.is_some())
        .map(|t| ((t.shape.n_layer, t.shape.d_model), d_of(t), (nd(t) / nd(largest)).log10()))
        .collect();
    Demo {
        fitted: fitted.len(),
        sealed: p.jobs.iter().filter(|j| j.sealed).count(),
        tokens_per_parameter: d_of(largest) / largest.accounting.n as f64,
        targets,
    }
}

/// The predictable demo (cli/demo/predictable.toml) is what docs/predictable-demo.md fixed: the
/// largest fitted size sees ≥ 5 tokens per parameter, and the sealed target lies ≥ 0.5 decades
/// of compute beyond the largest fitted run.
#[test]
fn the_predictable_demo_plans_as_designed() {
    let d = demo(include_str!("../../cli/demo/predictable.toml"), "predictable.toml");
    assert_eq!((d.fitted, d.targets.len()), (7 * 8, 2), "seven trunks × eight D; two target cooldowns");
    assert_eq!(d.sealed, 4, "two target trunks and their cooldowns");
    assert!(d.tokens_per_parameter >= 5.0, "{} tokens per parameter", d.tokens_per_parameter);
    for &(shape, _, decades) in &d.targets {
        assert!(decades >= 0.5, "the target is {decades:.2} decades beyond");
        assert_eq!(shape, (4, 128));
    }
}

/// The second run's spec (cli/demo/predictable-second.toml): the first target (4x128 to 3.4e6)
/// and the second (5x160 to 2.38e6) lie ≥ 0.5 decades of compute beyond the largest fitted run,
/// and the second's cooldown to 1.19e6 (reported, not judged) below that.
#[test]
fn the_predictable_demos_second_run_plans_as_designed() {
    let d = demo(include_str!("../../cli/demo/predictable-second.toml"), "predictable-second.toml");
    assert_eq!((d.fitted, d.targets.len()), (7 * 8, 4), "seven trunks × eight D; four target cooldowns");
    assert_eq!(d.sealed, 7, "three target trunks and their cooldowns");
    let mut judged = Vec::new();
    for &(shape, tokens, decades) in &d.targets {
        if decades >= 0.5 {
            judged.push((shape, (tokens / 1e4).round() * 1e4));
        } else {
            assert_eq!((shape, tokens < 1.3e6), ((5, 160), true), "only the reported point is nearer");
        }
    }
    judged.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(judged, vec![((4, 128), 3.4e6), ((4, 128), 3.4e6), ((5, 160), 2.38e6)]);
}

/// The fourth target's spec (cli/demo/predictable-target-4.toml): predictable.toml's fitted runs
/// and one target, 5x160 to D = 3.4e6, 0.82 decades of compute beyond the largest fitted run.
#[test]
fn the_predictable_demos_fourth_target_plans_as_designed() {
    let d = demo(include_str!("../../cli/demo/predictable-target-4.toml"), "predictable-target-4.toml");
    assert_eq!((d.fitted, d.sealed), (7 * 8, 2), "seven trunks × eight D; the target's trunk and cooldown");
    let [(shape, tokens, decades)] = d.targets[..] else { panic!("one target: {:?}", d.targets) };
    // D rounds up to whole batches of 1024 tokens.
    assert_eq!((shape, tokens), ((5, 160), 3_400_704.0));
    assert!((decades - 0.82).abs() < 0.01, "{decades:.3} decades beyond");
}

/// The fifth target's spec (cli/demo/predictable-sotu.toml): predictable.toml's design on
/// another corpus, with one seed of its target, 4x128 to D = 3.4e6, 0.52 decades of compute
/// beyond the largest fitted run.
#[test]
fn the_predictable_demos_fifth_target_plans_as_designed() {
    let d = demo(include_str!("../../cli/demo/predictable-sotu.toml"), "predictable-sotu.toml");
    assert_eq!((d.fitted, d.sealed), (7 * 8, 2), "seven trunks × eight D; the target's trunk and cooldown");
    assert!(d.tokens_per_parameter >= 5.0, "{} tokens per parameter", d.tokens_per_parameter);
    let [(shape, tokens, decades)] = d.targets[..] else { panic!("one target: {:?}", d.targets) };
    assert_eq!((shape, tokens), ((4, 128), 3_400_704.0));
    assert!((decades - 0.52).abs() < 0.01, "{decades:.3} decades beyond");
}

/// The sixth target's spec (cli/demo/predictable-sotu-target-6.toml): 6x192 to D = 3.4e6, as
/// the fifth sweep's fitted sizes were trained, 1.06 decades of compute beyond its largest run.
#[test]
fn the_predictable_demos_sixth_target_plans_as_designed() {
    let p =
        plan(include_str!("../../cli/demo/predictable-sotu-target-6.toml"), "predictable-sotu-target-6.toml", |_| {
            Some(DatasetFacts { vocab: 256, train_tokens: 10_000_000 })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let ends: Vec<_> = p.jobs.iter().filter(|j| j.branch.is_some()).collect();
    let [end] = ends[..] else { panic!("one cooldown: {}", ends.len()) };
    let tokens = end.total_steps * end.config.train.batch_tokens;
    assert_eq!(((end.shape.n_layer, end.shape.d_model), end.accounting.n, tokens), ((6, 192), 2_669_568, 3_400_704));
    // The fifth sweep's largest fitted run: 3x96 (N = 335,712) to D = 2,380,800.
    let decades = ((end.accounting.n as f64 * tokens as f64) / (335_712.0 * 2_380_800.0)).log10();
    assert!((decades - 1.06).abs() < 0.01, "{decades:.3} decades beyond");
}
