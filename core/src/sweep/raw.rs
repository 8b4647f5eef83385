//! The spec as TOML gives it, before validation: every key with its span, so that an error can
//! name its line.
use serde::Deserialize;
use toml::Spanned;

use crate::job::Schedule;

pub(super) type Shapes = Spanned<Vec<Spanned<Vec<i64>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub name: Spanned<String>,
    pub dataset: Spanned<String>,
    #[serde(default)]
    pub seeds: Option<Spanned<Vec<u64>>>,
    pub model: RawModel,
    pub train: RawTrain,
    #[serde(default)]
    pub resources: Option<RawResources>,
    #[serde(default)]
    pub grid: Vec<RawGrid>,
    #[serde(default)]
    pub branch: Vec<RawBranch>,
    /// Which checkpoints each job keeps.
    #[serde(default)]
    pub retention: Option<Spanned<crate::retention::Retention>>,
}

/// One block of `[[branch]]`: jobs that fork from every job of the grid (or branch block) it
/// names, at the points it gives, with one change: a cooldown, or a batch size.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBranch {
    /// Its own name, for branches that fork from these.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// The grid or branch block it forks from (`main` for a spec without `[[grid]]`).
    pub from: Spanned<String>,
    /// Only the parents of these shapes (default: all).
    #[serde(default)]
    pub shapes: Option<Shapes>,
    #[serde(default)]
    pub cooldown: Option<Spanned<RawCooldown>>,
    #[serde(default)]
    pub batch: Option<Spanned<RawBatch>>,
}

/// A cooldown to each of `to_tokens`, over its last `fraction` (default 0.2).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCooldown {
    pub to_tokens: Spanned<Vec<Num>>,
    #[serde(default)]
    pub fraction: Option<Spanned<f64>>,
    #[serde(default)]
    pub shape: Option<crate::schedule::DecayShape>,
}

/// At each of `at_tokens`, a window of `window_tokens` at each batch multiplier k, the learning
/// rate scaled by √k (`lr_scaling = "sqrt"`, the default), k (`"linear"`) or not (`"none"`),
/// optionally re-warmed from the trunk's rate over `rewarmup_steps`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBatch {
    pub at_tokens: Spanned<Vec<Num>>,
    pub multipliers: Spanned<Vec<f64>>,
    pub window_tokens: Spanned<Num>,
    #[serde(default)]
    pub lr_scaling: Option<Spanned<String>>,
    /// The fewest optimizer steps a window may take at any k (default 40; tests of the
    /// machinery set it lower on purpose).
    #[serde(default)]
    pub min_steps: Option<Spanned<Num>>,
    /// A short re-warmup: each window's first steps ramp the rate linearly from the trunk's to
    /// the window's (at most half the shortest window; default none).
    #[serde(default)]
    pub rewarmup_steps: Option<Spanned<Num>>,
}

/// One block of `[[grid]]`: the axes it sweeps; absent keys take `[model]`'s and `[train]`'s.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrid {
    /// A name, for branches that fork from this block's jobs.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub shapes: Option<Shapes>,
    #[serde(default)]
    pub batch_tokens: Option<Spanned<OneOrMany<Num>>>,
    #[serde(default)]
    pub dataset_tokens: Option<Spanned<OneOrMany<DTokens>>>,
    #[serde(default)]
    pub lr: Option<Spanned<OneOrMany<LrItem>>>,
    #[serde(default)]
    pub seeds: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    pub tokens: Option<Spanned<Num>>,
    #[serde(default)]
    pub steps: Option<Spanned<Num>>,
    #[serde(default)]
    pub patience: Option<Spanned<Num>>,
    /// Its jobs are sealed targets: trained and stored, but withheld from every fit until the
    /// sweep's predictions are locked, then scored against them.
    #[serde(default)]
    pub sealed: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub n_ctx: Spanned<i64>,
    #[serde(default)]
    pub d_head: Option<Spanned<i64>>,
    #[serde(default)]
    pub n_heads: Option<Spanned<i64>>,
    /// d_ff = ff_mult · d_model.
    #[serde(default)]
    pub ff_mult: Option<Spanned<i64>>,
    /// [n_layer, d_model] pairs.
    pub shapes: Shapes,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected one number, such as 1024 or 1.2e6")]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// A positive whole count.
    pub fn count(&self) -> Option<u64> {
        match *self {
            Num::Int(i) if i > 0 => Some(i as u64),
            Num::Float(f) if f >= 1.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected one value or a list of them, such as 1024 or [1024, 2048]")]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn iter_items(&self) -> Box<dyn Iterator<Item = &T> + '_> {
        match self {
            OneOrMany::One(t) => Box::new(std::iter::once(t)),
            OneOrMany::Many(v) => Box::new(v.iter()),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "expected a token count, such as 1.2e6, or \"all\"")]
pub(super) enum DTokens {
    Word(String),
    Num(Num),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum LrItem {
    Word(String),
    Value(f64),
    PerWidth(crate::job::PerWidth),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrain {
    pub batch_tokens: Spanned<OneOrMany<Num>>,
    #[serde(default)]
    pub dataset_tokens: Option<Spanned<OneOrMany<DTokens>>>,
    #[serde(default)]
    pub tokens: Option<Spanned<Num>>,
    #[serde(default)]
    pub steps: Option<Spanned<Num>>,
    #[serde(default)]
    pub target_val_loss: Option<f64>,
    #[serde(default)]
    pub patience: Option<Spanned<Num>>,
    pub lr: Spanned<OneOrMany<LrItem>>,
    #[serde(default)]
    pub warmup_steps: Option<Spanned<Num>>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub micro_batch: Option<Spanned<Num>>,
    #[serde(default)]
    pub weight_decay: Option<f64>,
    #[serde(default)]
    pub grad_clip: Option<f64>,
    #[serde(default)]
    pub eval_every: Option<Spanned<Num>>,
    #[serde(default)]
    pub eval_windows: Option<Spanned<Num>>,
    #[serde(default)]
    pub checkpoint_every: Option<Spanned<Num>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResources {
    #[serde(default)]
    pub device: Option<Spanned<String>>,
    #[serde(default)]
    pub max_restarts: Option<u32>,
    #[serde(default)]
    pub threads: Option<i32>,
    /// Most jobs trained at once as one fused batched model: jobs that differ only in seed or
    /// learning rate (same shape, batch, data, length) may share one process on one device.
    #[serde(default)]
    pub fuse: Option<Spanned<i64>>,
    /// On CUDA, capture each step as a CUDA graph (default true).
    #[serde(default)]
    pub cuda_graphs: Option<bool>,
}
