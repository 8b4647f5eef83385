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
}

/// One block of `[[grid]]`: the axes it sweeps; absent keys take `[model]`'s and `[train]`'s.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrid {
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
#[serde(untagged)]
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
#[serde(untagged)]
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
#[serde(untagged)]
pub(super) enum DTokens {
    Word(String),
    Num(Num),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum LrItem {
    Word(String),
    Value(f64),
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
