//! Sweep specs (TOML): parsed strictly, validated with the line and key of every error, and
//! expanded into one trainer [`JobConfig`] per grid point: shapes × D × B × learning rates × seeds.
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::accounting::Accounting;
use crate::domain::job::{
    CheckpointSpec, DataSpec, EvalSpec, JobConfig, LrRule, LrSpec, ModelSpec, Schedule, StopRule, TrainSpec,
};
use crate::domain::shape::Shape;
use crate::error::{DomainError, Result};

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
}

/// A validated sweep: its metadata and its jobs in expansion order.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub name: String,
    pub dataset: String,
    pub max_restarts: u32,
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
    if m.shapes.get_ref().is_empty() {
        return Err(src.err(
            m.shapes.span(),
            "model.shapes",
            "the grid is empty: give at least one [n_layer, d_model]",
        ));
    }
    let mut shapes = Vec::new();
    for (i, s) in m.shapes.get_ref().iter().enumerate() {
        let key = format!("model.shapes[{i}]");
        let &[n_layer, d_model] = s.get_ref().as_slice() else {
            return Err(src.err(s.span(), &key, "expected [n_layer, d_model]"));
        };
        let n_heads = match (&m.n_heads, &m.d_head) {
            (Some(h), _) => *h.get_ref(),
            (None, Some(dh)) => {
                let dh = *dh.get_ref();
                if dh <= 0 || d_model % dh != 0 {
                    return Err(src.err(s.span(), &key, format!("d_model {d_model} is not divisible by d_head {dh}")));
                }
                d_model / dh
            }
            (None, None) => return Err(src.err(m.shapes.span(), "model", "give n_heads or d_head")),
        };
        let shape = Shape { n_layer, d_model, n_heads, d_ff: ff_mult * d_model, n_ctx, vocab: facts.vocab };
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

    let t = &raw.train;
    let count = |v: &Option<Spanned<Num>>, key: &str| -> Result<Option<u64>> {
        match v {
            None => Ok(None),
            Some(n) => n.get_ref().count().map(Some).ok_or_else(|| src.err(n.span(), key, "expected a positive count")),
        }
    };
    let batches = spanned_counts(&src, &t.batch_tokens, "train.batch_tokens")?;
    let d_list: Vec<Option<u64>> = match &t.dataset_tokens {
        None => vec![None],
        Some(d) => {
            let mut out = Vec::new();
            for item in d.get_ref().iter_items() {
                match item {
                    DTokens::Word(w) if w == "all" => out.push(None),
                    DTokens::Num(n) if n.count().is_some() => out.push(n.count()),
                    _ => return Err(src.err(d.span(), "train.dataset_tokens", "expected \"all\" or token counts")),
                }
            }
            out
        }
    };
    if let (Some(d), Some(&Some(bad))) =
        (&t.dataset_tokens, d_list.iter().find(|x| x.is_some_and(|v| v > facts.train_tokens)))
    {
        return Err(src.err(
            d.span(),
            "train.dataset_tokens",
            format!("{bad} exceeds the dataset's {} training tokens", facts.train_tokens),
        ));
    }
    let mut lrs = Vec::new();
    for item in t.lr.get_ref().iter_items() {
        lrs.push(match item {
            LrItem::Word(w) if w == "kaplan" => LrSpec::Rule(LrRule::Kaplan),
            LrItem::Value(v) if *v > 0.0 && *v < 1.0 => LrSpec::Value(*v),
            _ => return Err(src.err(t.lr.span(), "train.lr", "expected \"kaplan\" or numbers in (0, 1)")),
        });
    }
    let tokens = count(&t.tokens, "train.tokens")?;
    let steps = count(&t.steps, "train.steps")?;
    if tokens.is_none() && steps.is_none() {
        return Err(src.err(0..0, "train", "give tokens or steps: the length of each job"));
    }
    let seeds = raw.seeds.as_ref().map_or_else(|| vec![0], |s| s.get_ref().clone());
    if seeds.is_empty() {
        let span = raw.seeds.as_ref().map_or(0..0, |s| s.span());
        return Err(src.err(span, "seeds", "the grid is empty: give at least one seed"));
    }
    let n_jobs = shapes.len() * d_list.len() * batches.len() * lrs.len() * seeds.len();
    if n_jobs > MAX_JOBS {
        return Err(src.err(0..0, "grid", format!("{n_jobs} jobs exceed the limit of {MAX_JOBS} per sweep")));
    }
    let res = raw.resources.as_ref();
    let device = res.and_then(|r| r.device.as_ref()).map_or_else(|| "auto".to_string(), |d| d.get_ref().clone());
    if let Some(d) = res.and_then(|r| r.device.as_ref()) {
        crate::domain::job::parse_device(d.get_ref())
            .map_err(|e| src.err(d.span(), "resources.device", e.to_string()))?;
    }
    let micro = count(&t.micro_batch, "train.micro_batch")?;
    let eval = EvalSpec {
        every: count(&t.eval_every, "train.eval_every")?.unwrap_or(EvalSpec::default().every),
        windows: count(&t.eval_windows, "train.eval_windows")?.unwrap_or(EvalSpec::default().windows),
    };
    let checkpoint_every = count(&t.checkpoint_every, "train.checkpoint_every")?.unwrap_or(0);
    let warmup = count(&t.warmup_steps, "train.warmup_steps")?.unwrap_or(0);

    let mut jobs = Vec::with_capacity(n_jobs);
    for (shape, acct) in &shapes {
        for d in &d_list {
            for (bi, b) in batches.iter().enumerate() {
                for lr in &lrs {
                    for seed in &seeds {
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
                                gns_ema: 0.95,
                            },
                            stop: StopRule { steps, tokens, target_val_loss: t.target_val_loss },
                            eval: eval.clone(),
                            checkpoint: CheckpointSpec { every: checkpoint_every, dir: PathBuf::new(), keep: 2 },
                            device: device.clone(),
                            threads: res.and_then(|r| r.threads),
                        };
                        let job = config.resolve(Some(facts.vocab)).map_err(|e| {
                            let span = t.batch_tokens.span();
                            src.err(span, &format!("train.batch_tokens[{bi}]"), strip_invalid(e))
                        })?;
                        jobs.push(JobPlan {
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
    Ok(SweepPlan { name, dataset: ds_name, max_restarts: res.and_then(|r| r.max_restarts).unwrap_or(3), jobs })
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
