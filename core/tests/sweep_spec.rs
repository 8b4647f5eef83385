//! Sweep specs: expansion over the grid, and one clear error naming line and key per bad spec.
use ladder_core::branch::BranchKind;
use ladder_core::sweep::{DatasetFacts, plan};

const SPEC: &str = r#"name = "kaplan-small"
dataset = "gutenberg"
seeds = [0, 1]

[model]
n_ctx = 256
d_head = 64
shapes = [[2, 128], [4, 256], [6, 384]]

[train]
batch_tokens = [16384, 65536]
dataset_tokens = ["all", 1e6]
tokens = 2e7
lr = "kaplan"
warmup_steps = 250
eval_every = 200
checkpoint_every = 1000

[resources]
device = "cuda"
max_restarts = 3
"#;

fn facts(name: &str) -> Option<DatasetFacts> {
    (name == "gutenberg").then_some(DatasetFacts { vocab: 50257, train_tokens: 3_000_000 })
}

fn err(spec: &str) -> String {
    plan(spec, "spec.toml", facts).expect_err("must be refused").to_string()
}

/// 1-based line of the first line starting with `prefix`.
fn line(spec: &str, prefix: &str) -> usize {
    spec.lines().position(|l| l.starts_with(prefix)).expect("prefix in spec") + 1
}

#[test]
fn expands_the_grid_with_derived_n_and_steps() {
    let p = plan(SPEC, "spec.toml", facts).expect("valid");
    assert_eq!(p.name, "kaplan-small");
    assert_eq!(p.max_restarts, 3);
    assert_eq!(p.jobs.len(), 3 * 2 * 2 * 2); // shapes × D × B × seeds
    let first = &p.jobs[0];
    assert_eq!((first.shape.n_layer, first.shape.d_model, first.shape.n_heads), (2, 128, 2));
    assert_eq!(first.accounting.n_kaplan, 12 * 2 * 128 * 128);
    assert_eq!(first.total_steps, 20_000_000u64.div_ceil(16384));
    // Kaplan eq. D.1 on the exact N of 2 × 128.
    let n = first.accounting.n as f64;
    assert!((first.lr - (0.003239 - 0.0001395 * n.ln())).abs() < 1e-15);
    // The rate planned is the rate the job runs: written into its config as a number.
    for j in &p.jobs {
        assert_eq!(j.config.train.lr, ladder_core::job::LrSpec::Value(j.lr), "{}x{}", j.shape.n_layer, j.shape.d_model);
    }
    assert_eq!(first.config.device, ladder_core::job::DeviceRequest::AnyGpu, "\"cuda\" is any GPU");
    assert_eq!(p.jobs[2].dataset_tokens, None); // order: shape, D, B, lr, seed
    assert_eq!(p.jobs[4].dataset_tokens, Some(1_000_000));
    assert_eq!(p.jobs[1].config.train.seed, 1);
    assert_eq!(p.jobs.last().map(|j| j.shape.d_model), Some(384));
    // Each job config is a valid trainer config that round-trips through TOML.
    let text = first.config.to_toml().expect("toml");
    let back = ladder_core::job::JobConfig::from_toml(&text, "job").expect("round trip");
    assert_eq!(back.model.d_model, 128);
}

#[test]
fn unknown_key_names_line_and_key() {
    let spec = SPEC.replace("warmup_steps = 250", "warmup_steps = 250\nwarmup_tokens = 5");
    let e = err(&spec);
    assert!(
        e.contains(&format!(
            "line {}: train.warmup_tokens: unknown field `warmup_tokens`",
            line(&spec, "warmup_tokens")
        )),
        "{e}"
    );
}

#[test]
fn wrong_type_names_line_and_key() {
    let spec = SPEC.replace("n_ctx = 256", "n_ctx = \"long\"");
    let e = err(&spec);
    assert!(e.contains(&format!("line {}: model.n_ctx: invalid type", line(&spec, "n_ctx"))), "{e}");
}

/// A list where one number belongs says so, with the block and key, not serde's "did not match
/// any variant".
#[test]
fn a_list_for_one_number_names_the_block_key_and_what_it_takes() {
    let spec = GRIDS.replace("tokens = 2e6", "tokens = [1e6, 2e6]");
    let e = err(&spec);
    let at = line(&spec, "tokens = [");
    assert_eq!(e, format!("spec.toml: line {at}: grid[2].tokens: expected one number, such as 1024 or 1.2e6"));
    let e = err(&SPEC.replace("dataset_tokens = [\"all\", 1e6]", "dataset_tokens = [\"all\", true]"));
    assert!(e.contains(": train.dataset_tokens: expected one value or a list of them"), "{e}");
    assert!(!e.contains("did not match"), "{e}");
}

#[test]
fn d_model_not_dividing_into_heads_names_the_shape() {
    let spec = SPEC.replace("[4, 256]", "[4, 250]");
    let e = err(&spec);
    assert_eq!(
        e,
        format!(
            "spec.toml: line {}: model.shapes[1]: d_model 250 is not divisible by d_head 64",
            line(&spec, "shapes")
        )
    );
}

#[test]
fn odd_head_width_is_refused_for_rotary_positions() {
    // Rotary positions rotate each head in two halves: d_head must be even.
    let spec = SPEC.replace("d_head = 64", "d_head = 63").replace("[[2, 128], [4, 256], [6, 384]]", "[[2, 126]]");
    let e = err(&spec);
    assert_eq!(
        e,
        format!(
            "spec.toml: line {}: model.shapes[0]: d_head 63 (d_model / n_heads) must be even for rotary positions \
             (model.d_head)",
            line(&spec, "shapes")
        )
    );
}

#[test]
fn empty_grids_are_refused() {
    let e = err(&SPEC.replace("shapes = [[2, 128], [4, 256], [6, 384]]", "shapes = []"));
    assert!(e.contains("model.shapes: the grid is empty"), "{e}");
    let e = err(&SPEC.replace("seeds = [0, 1]", "seeds = []"));
    assert!(e.contains("line 3: seeds: the grid is empty"), "{e}");
    let e = err(&SPEC.replace("batch_tokens = [16384, 65536]", "batch_tokens = []"));
    assert!(e.contains(&format!("line {}: train.batch_tokens: the grid is empty", line(SPEC, "batch_tokens"))), "{e}");
}

#[test]
fn absurd_sizes_are_refused() {
    let e = err(&SPEC.replace("[6, 384]", "[2000, 65536]"));
    assert!(e.contains("model.shapes[2]") && e.contains("parameters exceed the limit of 1000000000000"), "{e}");
    let e = err(&SPEC.replace("n_ctx = 256", "n_ctx = 10000000"));
    assert!(e.contains("model.n_ctx: 10000000 is outside 1..=131072"), "{e}");
    let big = SPEC.replace(
        "seeds = [0, 1]",
        &format!("seeds = [{}]", (0..1000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")),
    );
    let e = err(&big);
    assert!(e.contains("grid: 12000 jobs exceed the limit of 10000"), "{e}");
    let e = err(&SPEC.replace("1e6", "1e9"));
    assert!(e.contains("train.dataset_tokens: 1000000000 exceeds the dataset's 3000000 training tokens"), "{e}");
}

#[test]
fn unknown_dataset_names_line_and_key() {
    let e = err(&SPEC.replace("\"gutenberg\"", "\"wikitext\""));
    assert!(e.starts_with("spec.toml: line 2: dataset: unknown dataset \"wikitext\""), "{e}");
}

#[test]
fn bad_batch_is_located() {
    let e = err(&SPEC.replace("16384", "1000"));
    assert!(e.contains("train.batch_tokens[0]") && e.contains("not a positive multiple of n_ctx 256"), "{e}");
}

const GRIDS: &str = r#"name = "three-axes"
dataset = "gutenberg"

[model]
n_ctx = 128
d_head = 32
shapes = [[1, 64], [2, 64], [2, 128], [4, 128]]

[train]
batch_tokens = 4096
tokens = 1e6
lr = 3e-3

[[grid]]                                   # N axis

[[grid]]                                   # B axis at two sizes
shapes = [[2, 64], [2, 128]]
batch_tokens = [1024, 2048, 4096, 8192]

[[grid]]                                   # D axis at two sizes, trained longer
shapes = [[2, 64], [4, 128]]
dataset_tokens = [1e5, 3e5, 1e6]
tokens = 2e6
"#;

#[test]
fn grid_blocks_are_a_union_without_duplicates() {
    let p = plan(GRIDS, "spec.toml", facts).expect("valid");
    let key = |j: &ladder_core::sweep::JobPlan| {
        (j.shape.n_layer, j.shape.d_model, j.config.train.batch_tokens, j.dataset_tokens, j.config.stop.tokens)
    };
    let keys: Vec<_> = p.jobs.iter().map(key).collect();
    // 4 (N axis) + 4·2 − 2 shared with the N axis (B = 4096) + 3·2 = 16.
    assert_eq!(keys.len(), 16, "{keys:?}");
    assert_eq!(keys[0], (1, 64, 4096, None, Some(1_000_000)));
    assert!(keys.contains(&(2, 128, 1024, None, Some(1_000_000))));
    assert!(keys.contains(&(4, 128, 4096, Some(100_000), Some(2_000_000))));
    let b_at_2x64: Vec<u64> = keys.iter().filter(|k| (k.0, k.1, k.3) == (2, 64, None)).map(|k| k.2).collect::<Vec<_>>();
    assert_eq!(b_at_2x64, vec![4096, 1024, 2048, 8192]);
    // The D-axis jobs run their own token budget: 2e6 / 4096 steps.
    let d_job = p.jobs.iter().find(|j| j.dataset_tokens == Some(300_000)).expect("D job");
    assert_eq!(d_job.total_steps, 2_000_000u64.div_ceil(4096));
}

#[test]
fn grid_block_errors_name_the_block_and_key() {
    let bad = GRIDS.replace("batch_tokens = [1024, 2048, 4096, 8192]", "batch_tokens = [1024, -1]");
    let e = err(&bad);
    assert!(e.contains("grid[1].batch_tokens"), "{e}");
    assert!(e.contains(&format!("line {}", line(&bad, "batch_tokens = [1024, -1]"))), "{e}");
    let bad = GRIDS.replace("dataset_tokens = [1e5, 3e5, 1e6]", "dataset_tokens = [1e5, 3e7]");
    let e = err(&bad);
    assert!(e.contains("grid[2].dataset_tokens") && e.contains("exceeds"), "{e}");
    let bad = GRIDS.replace("[[grid]]                                   # N axis", "[[grid]]\nwidth = 3");
    assert!(err(&bad).contains("width"), "unknown keys in a block are refused");
}

#[test]
fn a_grid_whose_job_count_overflows_is_refused_before_expansion() {
    // 4 lists of 65,536 entries: 2^64 jobs, which wraps a usize to 0. It must be refused.
    let many = |k: usize| format!("[{}]", (1..=k).map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
    let spec = format!(
        "name = \"huge\"\ndataset = \"gutenberg\"\nseeds = {}\n[model]\nn_ctx = 8\nd_head = 8\nshapes = [[1, 8]]\n[train]\nbatch_tokens = {}\ndataset_tokens = {}\nlr = [{}]\ntokens = 1e6\n",
        many(65_536),
        many(65_536),
        many(65_536),
        (1..=65_536).map(|i| format!("{}", 1e-6 * i as f64)).collect::<Vec<_>>().join(", ")
    );
    let e = err(&spec);
    assert!(e.contains("the job count overflows; the limit is 10000"), "{e}");
}

#[test]
fn the_shipped_demo_specs_plan_three_axes() {
    let demo = |vocab, train_tokens| move |_: &str| Some(DatasetFacts { vocab, train_tokens });
    for (path, vocab, train_tokens, sizes) in [
        ("../cli/demo/demo.toml", 256, 1_180_897, 8usize),
        ("../cli/demo/scratch.toml", 256, 1_180_897, 5),
        ("../cli/demo/gpu.toml", 50257, 2_900_000, 7),
    ] {
        let text = std::fs::read_to_string(path).expect("spec");
        let p = plan(&text, path, demo(vocab, train_tokens)).expect("plans");
        let mut n: Vec<u64> = p.jobs.iter().map(|j| j.accounting.n).collect();
        n.sort();
        n.dedup();
        assert_eq!(n.len(), sizes, "{path}");
        let decades = (*n.last().expect("n") as f64 / n[0] as f64).log10();
        assert!(decades >= if sizes >= 7 { 2.0 } else { 1.5 }, "{path}: {decades} decades of N");
        // A batch axis of ≥ 4 values spanning ≥ 8x, and a data axis of ≥ 3 values over ≥ 1
        // decade, each at ≥ 2 sizes. With branches, D is where a cooldown ends.
        let mut b_sizes = 0;
        let mut d_sizes = 0;
        for &size in &n {
            let at: Vec<_> = p.jobs.iter().filter(|j| j.accounting.n == size).collect();
            let mut b: Vec<u64> =
                at.iter().filter(|j| j.dataset_tokens.is_none()).map(|j| j.config.train.batch_tokens).collect();
            b.sort();
            b.dedup();
            if b.len() >= 4 && b[b.len() - 1] >= 8 * b[0] {
                b_sizes += 1;
            }
            let mut d: Vec<u64> = at
                .iter()
                .filter_map(|j| match j.branch.map(|b| b.kind) {
                    Some(BranchKind::Cooldown { to_tokens }) => Some(to_tokens),
                    _ => j.dataset_tokens,
                })
                .collect();
            d.sort();
            d.dedup();
            if d.len() >= 3 && d[d.len() - 1] >= 10 * d[0] {
                d_sizes += 1;
            }
        }
        assert!(b_sizes >= 2 && d_sizes >= 2, "{path}: B axis at {b_sizes} sizes, D axis at {d_sizes}");
    }
}

/// `testdata/demo_cooldown_ends.csv` (read by cli/tests/fit_forms.rs) is the built-in demo's
/// measurement: one end per planned cooldown, at the demo's N and D. The demo has eight sizes so
/// that a hold-out refit, which drops the largest, keeps seven: on six, AICc cannot keep an E.
#[test]
fn the_demo_ends_in_testdata_are_the_demos_cooldowns() {
    let path = "../cli/demo/demo.toml";
    let text = std::fs::read_to_string(path).expect("spec");
    let p = plan(&text, path, |_: &str| Some(DatasetFacts { vocab: 256, train_tokens: 1_180_897 })).expect("plans");
    let mut planned: Vec<(u64, u64)> = p
        .jobs
        .iter()
        .filter_map(|j| match j.branch.map(|b| b.kind) {
            // A run ends at the first whole step at or past D.
            Some(BranchKind::Cooldown { to_tokens }) => {
                let b = j.config.train.batch_tokens;
                Some((j.accounting.n, to_tokens.div_ceil(b) * b))
            }
            _ => None,
        })
        .collect();
    planned.sort();
    let csv = std::fs::read_to_string("../testdata/demo_cooldown_ends.csv").expect("testdata");
    let mut ends: Vec<(u64, u64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().expect("N"), f[1].parse().expect("D"))
        })
        .collect();
    ends.sort();
    assert_eq!(ends, planned);
    let sizes: std::collections::BTreeSet<u64> = ends.iter().map(|e| e.0).collect();
    assert!(sizes.len() >= 8, "{} sizes", sizes.len());
}

#[test]
fn patience_is_set_per_block_and_must_be_a_count() {
    let spec = GRIDS.replace("tokens = 2e6\n", "tokens = 2e6\npatience = 4\n");
    let p = plan(&spec, "spec.toml", facts).expect("valid");
    let patience: Vec<Option<u64>> = p.jobs.iter().map(|j| j.config.stop.patience).collect();
    assert_eq!(patience.iter().filter(|x| **x == Some(4)).count(), 6, "the D block's 6 jobs: {patience:?}");
    assert_eq!(patience.iter().filter(|x| x.is_none()).count(), 10);
    let e = err(&spec.replace("patience = 4", "patience = 0"));
    assert!(e.contains("grid[2].patience") && e.contains("positive count"), "{e}");
}

#[test]
fn sizes_whose_products_overflow_are_refused_without_a_panic() {
    // d_model² alone overflows 64 bits: a checked error, not a wrapped count.
    let e = err(&SPEC.replace("[6, 384]", "[6, 5000000000]"));
    assert!(e.contains("model.shapes[2]") && e.contains("overflows"), "{e}");
    let job = ladder_core::job::JobConfig::from_toml(
        "[model]\nn_layer = 2\nd_model = 4611686018427387904\nn_heads = 1\nn_ctx = 8\nvocab = 16\n[data]\ndir = \"d\"\n[train]\nbatch_tokens = 8\nlr = 0.001\n[stop]\nsteps = 1\n",
        "job.toml",
    )
    .expect("parses");
    let e = job.resolve(None).expect_err("refused").to_string();
    assert!(e.contains("model.d_model") && e.contains("too large"), "{e}");
}

#[test]
fn fuse_groups_jobs_that_differ_only_in_seed_or_learning_rate() {
    let spec = SPEC.replace("[resources]", "[resources]\nfuse = 4");
    let p = plan(&spec, "spec.toml", facts).expect("plans");
    assert_eq!(p.fuse, 4);
    let mut classes = std::collections::HashMap::new();
    for j in &p.jobs {
        let c = j.fuse_class.expect("a class");
        let k = (j.shape.n_layer, j.shape.d_model, j.config.train.batch_tokens, j.dataset_tokens);
        assert_eq!(*classes.entry(k).or_insert(c), c, "one class per shape, batch and D");
    }
    let distinct: std::collections::HashSet<u64> = classes.values().copied().collect();
    assert_eq!(distinct.len(), classes.len(), "different shapes or batches never share a class");
    let e = err(&SPEC.replace("[resources]", "[resources]\nfuse = 0"));
    assert!(e.contains("resources.fuse: expected 1..=64"), "{e}");
    assert!(plan(SPEC, "spec.toml", facts).expect("plans").jobs.iter().all(|j| j.fuse_class.is_none()));
}

#[test]
fn a_device_is_any_gpu_or_one_written_as_its_index_and_nothing_else() {
    for bad in ["cuda:01", "cuda:+1", "gpu:1", "cuda:"] {
        let spec = SPEC.replace(r#"device = "cuda""#, &format!("device = {bad:?}"));
        let e = err(&spec);
        let at = format!("line {}: resources.device", line(&spec, "device"));
        assert!(e.contains(&at) && e.contains(bad), "{bad}: {e}");
    }
    let spec = SPEC.replace(r#"device = "cuda""#, r#"device = "cuda:1""#);
    let p = plan(&spec, "spec.toml", facts).expect("valid");
    assert!(p.jobs.iter().all(|j| j.config.device == ladder_core::job::DeviceRequest::Gpu(1)));
}

#[test]
fn a_per_width_learning_rate_falls_as_one_over_d_model() {
    let spec = SPEC.replace(r#"lr = "kaplan""#, "lr = { value = 6e-3, at_d_model = 128 }");
    let p = plan(&spec, "spec.toml", facts).expect("valid");
    for j in &p.jobs {
        let want = 6e-3 * 128.0 / j.shape.d_model as f64;
        assert_eq!(j.lr, want, "{}x{}", j.shape.n_layer, j.shape.d_model);
    }
    let lrs: Vec<f64> = [128, 256, 384]
        .iter()
        .map(|&d| p.jobs.iter().find(|j| j.shape.d_model == d).map(|j| j.lr).expect("shape"))
        .collect();
    assert_eq!(lrs, vec![6e-3, 3e-3, 2e-3]);
    // The rate planned survives the trainer config's TOML round trip.
    let text = p.jobs[0].config.to_toml().expect("toml");
    let back = ladder_core::job::JobConfig::from_toml(&text, "job").expect("round trip");
    assert_eq!(back.train.lr, ladder_core::job::LrSpec::Value(6e-3));
}

#[test]
fn a_per_width_rate_outside_zero_one_names_the_line_key_and_shape() {
    let spec = SPEC.replace(r#"lr = "kaplan""#, "lr = { value = 0.5, at_d_model = 512 }");
    let e = err(&spec);
    assert_eq!(
        e,
        format!(
            "spec.toml: line {}: train.lr: 0.5 · 512 / 128 is outside (0, 1) for the shape [2, 128]",
            line(&spec, "lr = ")
        )
    );
    let spec = SPEC.replace(r#"lr = "kaplan""#, "lr = { value = 3e-3, at_d_model = 0 }");
    assert!(err(&spec).contains("train.lr: a per-width rate needs value in (0, 1) and at_d_model ≥ 1"));
    let spec = SPEC.replace(r#"lr = "kaplan""#, "lr = { value = 3e-3, at_width = 64 }");
    assert!(err(&spec).contains(&format!("line {}", line(&spec, "lr = "))));
}
