//! Sweep specs (TOML): parsed strictly, validated with the line and key of every error, and
//! expanded into one trainer [`JobConfig`] per grid point: shapes × D × B × learning rates × seeds.
//!
//! A spec may hold several `[[grid]]` blocks instead of one cross product: each names the axes
//! it sweeps (the rest default to `[model]` and `[train]`), and the sweep is the union of their
//! products with duplicates dropped. That is how a scaling study is laid out: an N axis, a batch
//! size axis at a few sizes, a data axis at a few sizes.
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::accounting::Accounting;
use crate::error::{DomainError, Result};
use crate::job::{
    CheckpointSpec, DataSpec, EvalSpec, JobConfig, LrRule, LrSpec, ModelSpec, Schedule, StopRule, TrainSpec,
};
use crate::shape::Shape;

/// Limits that keep a typo from scheduling the impossible.
pub const MAX_JOBS: usize = 10_000;
pub const MAX_N_CTX: i64 = 131_072;
pub const MAX_N_TOTAL: u64 = 1_000_000_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Spanned<String>,
    dataset: Spanned<String>,
    #[serde(default)]
    seeds: Option<Spanned<Vec<u64>>>,
    model: RawModel,
    train: RawTrain,
    #[serde(default)]
    resources: Option<RawResources>,
    #[serde(default)]
    grid: Vec<RawGrid>,
}

/// One block of `[[grid]]`: the axes it sweeps; absent keys take `[model]`'s and `[train]`'s.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    #[serde(default)]
    shapes: Option<Spanned<Vec<Spanned<Vec<i64>>>>>,
    #[serde(default)]
    batch_tokens: Option<Spanned<OneOrMany<Num>>>,
    #[serde(default)]
    dataset_tokens: Option<Spanned<OneOrMany<DTokens>>>,
    #[serde(default)]
    lr: Option<Spanned<OneOrMany<LrItem>>>,
    #[serde(default)]
    seeds: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    tokens: Option<Spanned<Num>>,
    #[serde(default)]
    steps: Option<Spanned<Num>>,
    #[serde(default)]
    patience: Option<Spanned<Num>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    n_ctx: Spanned<i64>,
    #[serde(default)]
    d_head: Option<Spanned<i64>>,
    #[serde(default)]
    n_heads: Option<Spanned<i64>>,
    /// d_ff = ff_mult · d_model.
    #[serde(default)]
    ff_mult: Option<Spanned<i64>>,
    /// [n_layer, d_model] pairs.
    shapes: Spanned<Vec<Spanned<Vec<i64>>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn count(&self) -> Option<u64> {
        match *self {
            Num::Int(i) if i > 0 => Some(i as u64),
            Num::Float(f) if f >= 1.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DTokens {
    Word(String),
    Num(Num),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LrItem {
    Word(String),
    Value(f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    batch_tokens: Spanned<OneOrMany<Num>>,
    #[serde(default)]
    dataset_tokens: Option<Spanned<OneOrMany<DTokens>>>,
    #[serde(default)]
    tokens: Option<Spanned<Num>>,
    #[serde(default)]
    steps: Option<Spanned<Num>>,
    #[serde(default)]
    target_val_loss: Option<f64>,
    #[serde(default)]
    patience: Option<Spanned<Num>>,
    lr: Spanned<OneOrMany<LrItem>>,
    #[serde(default)]
    warmup_steps: Option<Spanned<Num>>,
    #[serde(default)]
    schedule: Option<Schedule>,
    #[serde(default)]
    micro_batch: Option<Spanned<Num>>,
    #[serde(default)]
    weight_decay: Option<f64>,
    #[serde(default)]
    grad_clip: Option<f64>,
    #[serde(default)]
    eval_every: Option<Spanned<Num>>,
    #[serde(default)]
    eval_windows: Option<Spanned<Num>>,
    #[serde(default)]
    checkpoint_every: Option<Spanned<Num>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResources {
    #[serde(default)]
    device: Option<Spanned<String>>,
    #[serde(default)]
    max_restarts: Option<u32>,
    #[serde(default)]
    threads: Option<i32>,
    /// Most jobs trained at once as one fused batched model: jobs that differ only in seed or
    /// learning rate (same shape, batch, data, length) may share one process on one device.
    #[serde(default)]
    fuse: Option<Spanned<i64>>,
    /// On CUDA, capture each step as a CUDA graph (default true).
    #[serde(default)]
    cuda_graphs: Option<bool>,
}

/// Most members one fused model may hold.
pub const MAX_FUSE: u32 = 64;

/// A validated sweep: its metadata and its jobs in expansion order.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub name: String,
    pub dataset: String,
    pub max_restarts: u32,
    /// Most jobs per fused model (1 = no fusing).
    pub fuse: u32,
    pub jobs: Vec<JobPlan>,
}

/// One grid point.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The trainer config; `data.dir` and `checkpoint.dir` are filled in by the worker.
    pub config: JobConfig,
    pub shape: Shape,
    pub accounting: Accounting,
    pub total_steps: u64,
    pub lr: f64,
    /// D; None = all tokens.
    pub dataset_tokens: Option<u64>,
    /// Jobs of one sweep with the same class may be fused: the same config but for seed and
    /// learning rate. None when the sweep does not fuse.
    pub fuse_class: Option<u64>,
}

/// FNV-1a, 64 bits: a stable hash for grouping (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The fusing class of a job config: its TOML with the seed and learning rate blanked.
pub fn fuse_class(config: &JobConfig) -> u64 {
    let mut c = config.clone();
    c.train.seed = 0;
    c.train.lr = LrSpec::Value(0.0);
    fnv1a(c.to_toml().as_bytes())
}

/// What the coordinator knows of the named dataset.
#[derive(Debug, Clone, Copy)]
pub struct DatasetFacts {
    pub vocab: i64,
    pub train_tokens: u64,
}

/// Locates errors in the spec text.
struct Source<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> DomainError {
        let line = self.text[..span.start.min(self.text.len())].matches('\n').count() + 1;
        DomainError::Spec { origin: self.origin.to_string(), line, key: key.to_string(), message: message.into() }
    }
}

/// The line of a byte offset, 1-based.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses, validates and expands a spec. `dataset` answers for the dataset the spec names
/// (None = unknown dataset).
pub fn plan(text: &str, origin: &str, mut dataset: impl FnMut(&str) -> Option<DatasetFacts>) -> Result<SweepPlan> {
    let src = Source { origin, text };
    let raw: RawSpec = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        DomainError::Spec {
            origin: origin.to_string(),
            line,
            key: String::new(),
            message: e.message().trim_end().to_string(),
        }
    })?;

    let name = raw.name.get_ref().trim().to_string();
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.chars().all(|c| c.is_ascii_digit());
    if !name_ok {
        return Err(src.err(raw.name.span(), "name", "use 1-128 of [A-Za-z0-9._-], not all digits"));
    }
    let ds_name = raw.dataset.get_ref().clone();
    let facts = dataset(&ds_name).ok_or_else(|| {
        src.err(
            raw.dataset.span(),
            "dataset",
            format!("unknown dataset {ds_name:?}: register it with `ladder data add`"),
        )
    })?;

    let m = &raw.model;
    let n_ctx = *m.n_ctx.get_ref();
    if n_ctx <= 0 || n_ctx > MAX_N_CTX {
        return Err(src.err(m.n_ctx.span(), "model.n_ctx", format!("{n_ctx} is outside 1..={MAX_N_CTX}")));
    }
    let ff_mult = m.ff_mult.as_ref().map_or(4, |f| *f.get_ref());
    if ff_mult <= 0 {
        let span = m.ff_mult.as_ref().map_or(0..0, |f| f.span());
        return Err(src.err(span, "model.ff_mult", "must be positive"));
    }
    let shape_rule = ShapeRule { model: m, n_ctx, ff_mult, vocab: facts.vocab };

    let t = &raw.train;
    let count = |v: &Option<Spanned<Num>>, key: &str| -> Result<Option<u64>> {
        match v {
            None => Ok(None),
            Some(n) => n.get_ref().count().map(Some).ok_or_else(|| src.err(n.span(), key, "expected a positive count")),
        }
    };
    let res = raw.resources.as_ref();
    let device = res.and_then(|r| r.device.as_ref()).map_or_else(|| "auto".to_string(), |d| d.get_ref().clone());
    if let Some(d) = res.and_then(|r| r.device.as_ref()) {
        crate::job::parse_device(d.get_ref()).map_err(|e| src.err(d.span(), "resources.device", e.to_string()))?;
    }
    let fuse = match res.and_then(|r| r.fuse.as_ref()) {
        None => 1,
        Some(f) => match u32::try_from(*f.get_ref()) {
            Ok(k) if (1..=MAX_FUSE).contains(&k) => k,
            _ => {
                return Err(src.err(
                    f.span(),
                    "resources.fuse",
                    format!("expected 1..={MAX_FUSE} jobs per fused model"),
                ));
            }
        },
    };
    let micro = count(&t.micro_batch, "train.micro_batch")?;
    let eval = EvalSpec {
        every: count(&t.eval_every, "train.eval_every")?.unwrap_or(EvalSpec::default().every),
        windows: count(&t.eval_windows, "train.eval_windows")?.unwrap_or(EvalSpec::default().windows),
    };
    let checkpoint_every = count(&t.checkpoint_every, "train.checkpoint_every")?.unwrap_or(0);
    let warmup = count(&t.warmup_steps, "train.warmup_steps")?.unwrap_or(0);

    // Each block's axes, validated before anything is expanded; the job count is checked
    // arithmetic, so no product of list lengths can wrap past MAX_JOBS.
    let default_grid = RawGrid {
        shapes: None,
        batch_tokens: None,
        dataset_tokens: None,
        lr: None,
        seeds: None,
        tokens: None,
        steps: None,
        patience: None,
    };
    let blocks: Vec<(String, &RawGrid)> = if raw.grid.is_empty() {
        vec![(String::new(), &default_grid)]
    } else {
        raw.grid.iter().enumerate().map(|(i, g)| (format!("grid[{i}]."), g)).collect()
    };
    let mut axes_list = Vec::with_capacity(blocks.len());
    let mut n_jobs: usize = 0;
    for (prefix, g) in &blocks {
        let key = |field: &str, section: &str| {
            if prefix.is_empty() { format!("{section}.{field}") } else { format!("{prefix}{field}") }
        };
        let shapes = match &g.shapes {
            Some(list) => shape_rule.parse(&src, list, &key("shapes", "model"))?,
            None => shape_rule.parse(&src, &m.shapes, "model.shapes")?,
        };
        let batches = match &g.batch_tokens {
            Some(b) => spanned_counts(&src, b, &key("batch_tokens", "train"))?,
            None => spanned_counts(&src, &t.batch_tokens, "train.batch_tokens")?,
        };
        let d_list = match &g.dataset_tokens {
            Some(d) => dataset_tokens(&src, Some(d), &key("dataset_tokens", "train"), facts.train_tokens)?,
            None => dataset_tokens(&src, t.dataset_tokens.as_ref(), "train.dataset_tokens", facts.train_tokens)?,
        };
        let lrs = match &g.lr {
            Some(l) => learning_rates(&src, l, &key("lr", "train"))?,
            None => learning_rates(&src, &t.lr, "train.lr")?,
        };
        let (tokens, steps) = if g.tokens.is_some() || g.steps.is_some() {
            (count(&g.tokens, &key("tokens", "train"))?, count(&g.steps, &key("steps", "train"))?)
        } else {
            (count(&t.tokens, "train.tokens")?, count(&t.steps, "train.steps")?)
        };
        if tokens.is_none() && steps.is_none() {
            return Err(src.err(0..0, "train", "give tokens or steps: the length of each job"));
        }
        let patience = match &g.patience {
            Some(_) => count(&g.patience, &key("patience", "train"))?,
            None => count(&t.patience, "train.patience")?,
        };
        let seeds_src = g.seeds.as_ref().or(raw.seeds.as_ref());
        let seeds = seeds_src.map_or_else(|| vec![0], |s| s.get_ref().clone());
        if seeds.is_empty() {
            let span = seeds_src.map_or(0..0, |s| s.span());
            let key = if prefix.is_empty() { "seeds".to_string() } else { format!("{prefix}seeds") };
            return Err(src.err(span, &key, "the grid is empty: give at least one seed"));
        }
        // Saturating: a product of list lengths that wraps must not pass the limit.
        let block_jobs = [d_list.len(), batches.len(), lrs.len(), seeds.len()]
            .iter()
            .fold(shapes.len(), |acc, &k| acc.saturating_mul(k));
        n_jobs = n_jobs.saturating_add(block_jobs);
        if n_jobs > MAX_JOBS {
            let message = if n_jobs == usize::MAX {
                format!("the job count overflows; the limit is {MAX_JOBS} per sweep")
            } else {
                format!("{n_jobs} jobs exceed the limit of {MAX_JOBS} per sweep")
            };
            return Err(src.err(0..0, "grid", message));
        }
        axes_list.push(Axes {
            shapes,
            d_list,
            batches,
            lrs,
            seeds,
            tokens,
            steps,
            patience,
            key_batch: key("batch_tokens", "train"),
        });
    }

    let mut jobs: Vec<JobPlan> = Vec::with_capacity(n_jobs);
    let mut seen = std::collections::HashSet::new();
    for axes in &axes_list {
        for (shape, acct) in &axes.shapes {
            for d in &axes.d_list {
                for (bi, b) in axes.batches.iter().enumerate() {
                    for lr in &axes.lrs {
                        for seed in &axes.seeds {
                            let config = JobConfig {
                                model: ModelSpec {
                                    n_layer: shape.n_layer,
                                    d_model: shape.d_model,
                                    n_heads: Some(shape.n_heads),
                                    d_head: None,
                                    d_ff: Some(shape.d_ff),
                                    n_ctx,
                                    vocab: Some(facts.vocab),
                                },
                                data: DataSpec { dir: PathBuf::new(), max_tokens: *d },
                                train: TrainSpec {
                                    batch_tokens: *b,
                                    micro_batch: micro,
                                    lr: *lr,
                                    warmup_steps: warmup,
                                    schedule: t.schedule.unwrap_or(Schedule::Cosine),
                                    min_lr_ratio: 0.1,
                                    weight_decay: t.weight_decay.unwrap_or(0.1),
                                    beta1: 0.9,
                                    beta2: 0.95,
                                    eps: 1e-8,
                                    grad_clip: t.grad_clip.unwrap_or(1.0),
                                    seed: *seed,
                                    gns_ema: crate::job::DEFAULT_GNS_EMA,
                                },
                                stop: StopRule {
                                    steps: axes.steps,
                                    tokens: axes.tokens,
                                    target_val_loss: t.target_val_loss,
                                    patience: axes.patience,
                                },
                                eval: eval.clone(),
                                checkpoint: CheckpointSpec { every: checkpoint_every, dir: PathBuf::new(), keep: 2 },
                                device: device.clone(),
                                threads: res.and_then(|r| r.threads),
                                cuda_graphs: res.and_then(|r| r.cuda_graphs).unwrap_or(true),
                                gns: true,
                            };
                            // A point that two blocks share runs once.
                            if !seen.insert(config.to_toml()) {
                                continue;
                            }
                            let job = config
                                .resolve(Some(facts.vocab))
                                .map_err(|e| src.err(0..0, &format!("{}[{bi}]", axes.key_batch), strip_invalid(e)))?;
                            jobs.push(JobPlan {
                                fuse_class: (fuse > 1).then(|| fuse_class(&config)),
                                config,
                                shape: *shape,
                                accounting: *acct,
                                total_steps: job.total_steps,
                                lr: job.peak_lr,
                                dataset_tokens: *d,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(SweepPlan { name, dataset: ds_name, max_restarts: res.and_then(|r| r.max_restarts).unwrap_or(3), fuse, jobs })
}

/// One block's validated axes.
struct Axes {
    shapes: Vec<(Shape, Accounting)>,
    d_list: Vec<Option<u64>>,
    batches: Vec<u64>,
    lrs: Vec<LrSpec>,
    seeds: Vec<u64>,
    tokens: Option<u64>,
    steps: Option<u64>,
    patience: Option<u64>,
    key_batch: String,
}

/// How `[n_layer, d_model]` pairs become shapes: heads, d_ff and vocab from `[model]`.
struct ShapeRule<'a> {
    model: &'a RawModel,
    n_ctx: i64,
    ff_mult: i64,
    vocab: i64,
}

impl ShapeRule<'_> {
    fn parse(
        &self,
        src: &Source<'_>,
        list: &Spanned<Vec<Spanned<Vec<i64>>>>,
        key: &str,
    ) -> Result<Vec<(Shape, Accounting)>> {
        let m = self.model;
        if list.get_ref().is_empty() {
            return Err(src.err(list.span(), key, "the grid is empty: give at least one [n_layer, d_model]"));
        }
        let mut shapes = Vec::new();
        for (i, s) in list.get_ref().iter().enumerate() {
            let key = format!("{key}[{i}]");
            let &[n_layer, d_model] = s.get_ref().as_slice() else {
                return Err(src.err(s.span(), &key, "expected [n_layer, d_model]"));
            };
            let n_heads = match (&m.n_heads, &m.d_head) {
                (Some(h), _) => *h.get_ref(),
                (None, Some(dh)) => {
                    let dh = *dh.get_ref();
                    if dh <= 0 || d_model % dh != 0 {
                        return Err(src.err(
                            s.span(),
                            &key,
                            format!("d_model {d_model} is not divisible by d_head {dh}"),
                        ));
                    }
                    d_model / dh
                }
                (None, None) => return Err(src.err(list.span(), "model", "give n_heads or d_head")),
            };
            let d_ff = self.ff_mult.checked_mul(d_model).ok_or_else(|| src.err(s.span(), &key, "d_ff overflows"))?;
            let shape = Shape { n_layer, d_model, n_heads, d_ff, n_ctx: self.n_ctx, vocab: self.vocab };
            shape.validate().map_err(|e| src.err(s.span(), &key, strip_invalid(e)))?;
            let acct = Accounting::of(&shape);
            if acct.n_total > MAX_N_TOTAL {
                return Err(src.err(
                    s.span(),
                    &key,
                    format!("{} parameters is absurd here (limit {MAX_N_TOTAL})", acct.n_total),
                ));
            }
            shapes.push((shape, acct));
        }
        Ok(shapes)
    }
}

/// D values: "all" (None) or token counts no larger than the dataset.
fn dataset_tokens(
    src: &Source<'_>,
    d: Option<&Spanned<OneOrMany<DTokens>>>,
    key: &str,
    available: u64,
) -> Result<Vec<Option<u64>>> {
    let Some(d) = d else { return Ok(vec![None]) };
    let mut out = Vec::new();
    for item in d.get_ref().iter_items() {
        match item {
            DTokens::Word(w) if w == "all" => out.push(None),
            DTokens::Num(n) => match n.count() {
                Some(v) if v > available => {
                    return Err(src.err(
                        d.span(),
                        key,
                        format!("{v} exceeds the dataset's {available} training tokens"),
                    ));
                }
                Some(v) => out.push(Some(v)),
                None => return Err(src.err(d.span(), key, "expected \"all\" or token counts")),
            },
            _ => return Err(src.err(d.span(), key, "expected \"all\" or token counts")),
        }
    }
    if out.is_empty() {
        return Err(src.err(d.span(), key, "the grid is empty"));
    }
    Ok(out)
}

fn learning_rates(src: &Source<'_>, v: &Spanned<OneOrMany<LrItem>>, key: &str) -> Result<Vec<LrSpec>> {
    let mut lrs = Vec::new();
    for item in v.get_ref().iter_items() {
        lrs.push(match item {
            LrItem::Word(w) if w == "kaplan" => LrSpec::Rule(LrRule::Kaplan),
            LrItem::Value(x) if *x > 0.0 && *x < 1.0 => LrSpec::Value(*x),
            _ => return Err(src.err(v.span(), key, "expected \"kaplan\" or numbers in (0, 1)")),
        });
    }
    if lrs.is_empty() {
        return Err(src.err(v.span(), key, "the grid is empty"));
    }
    Ok(lrs)
}

impl<T> OneOrMany<T> {
    fn iter_items(&self) -> Box<dyn Iterator<Item = &T> + '_> {
        match self {
            OneOrMany::One(t) => Box::new(std::iter::once(t)),
            OneOrMany::Many(v) => Box::new(v.iter()),
        }
    }
}

fn spanned_counts(src: &Source<'_>, v: &Spanned<OneOrMany<Num>>, key: &str) -> Result<Vec<u64>> {
    let out: Option<Vec<u64>> = v.get_ref().iter_items().map(Num::count).collect();
    match out {
        Some(o) if !o.is_empty() => Ok(o),
        Some(_) => Err(src.err(v.span(), key, "the grid is empty")),
        None => Err(src.err(v.span(), key, "expected positive token counts")),
    }
}

/// The message of an InvalidConfig without its own key prefix.
fn strip_invalid(e: DomainError) -> String {
    match e {
        DomainError::InvalidConfig { key, message } => format!("{message} ({key})"),
        other => other.to_string(),
    }
}
