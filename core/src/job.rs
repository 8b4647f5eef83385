//! The job config (`job.toml`): one sweep point, parsed strictly and validated into a [`Job`].
//! Shared by the trainer (which runs it) and the coordinator (which writes it).
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{DomainError, Result};
use crate::shape::Shape;

/// A job config as written by a user or by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub model: ModelSpec,
    pub data: DataSpec,
    pub train: TrainSpec,
    pub stop: StopRule,
    #[serde(default)]
    pub eval: EvalSpec,
    #[serde(default)]
    pub checkpoint: CheckpointSpec,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when present).
    #[serde(default = "default_device")]
    pub device: String,
    /// CPU threads for libtorch; unset keeps libtorch's default.
    #[serde(default)]
    pub threads: Option<i32>,
    /// On CUDA, run each training step as a captured CUDA graph after a few eager warm-up steps
    /// (eager where capture fails). False: eager steps.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub cuda_graphs: bool,
    /// Measure the gradient noise scale from the micro-batches (default). False skips the
    /// per-micro-batch norms; points then carry no B_simple (for measuring what it costs).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub gns: bool,
    /// A branch: the run starts from its parent's checkpoint (see [`BranchStart`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchStart>,
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub n_layer: i64,
    pub d_model: i64,
    /// Attention heads; give this or `d_head`.
    #[serde(default)]
    pub n_heads: Option<i64>,
    #[serde(default)]
    pub d_head: Option<i64>,
    /// Feed-forward width; 4·d_model when unset.
    #[serde(default)]
    pub d_ff: Option<i64>,
    pub n_ctx: i64,
    /// Vocabulary size; taken from the dataset's meta.json when unset.
    #[serde(default)]
    pub vocab: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Folder holding `train.bin` and `val.bin` (uint16), and optionally `meta.json`.
    pub dir: PathBuf,
    /// D: only the first D training tokens are used; all when unset.
    #[serde(default, deserialize_with = "opt_count")]
    pub max_tokens: Option<u64>,
}

/// Peak learning rate: a number, `"kaplan"` for Kaplan et al. eq. D.1, or one that falls as
/// 1/d_model from a reference width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LrSpec {
    Value(f64),
    Rule(LrRule),
    PerWidth(PerWidth),
}

/// lr = value · at_d_model / d_model: Adam's learning rate inversely with width (μP's rule for
/// hidden matrices, applied to every parameter), so wider models step less far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerWidth {
    pub value: f64,
    pub at_d_model: i64,
}

impl PerWidth {
    /// The learning rate at `d_model`; None for a width that is not positive.
    pub fn at(&self, d_model: i64) -> Option<f64> {
        (d_model > 0 && self.at_d_model > 0).then(|| self.value * self.at_d_model as f64 / d_model as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrRule {
    Kaplan,
}

/// The shape of a WSD cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DecayShape {
    #[serde(rename = "linear")]
    Linear,
    /// lr falls as 1 − √progress: fast at first, then slowly (Hägele et al.'s best).
    #[serde(rename = "1-sqrt")]
    #[default]
    OneMinusSqrt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Cosine,
    Constant,
    /// Warmup–stable–decay: constant, then a cooldown from `train.decay_start`.
    Wsd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// B: tokens per optimizer step; a multiple of n_ctx.
    #[serde(deserialize_with = "count")]
    pub batch_tokens: u64,
    /// Sequences per micro-batch (gradient accumulation); the whole batch when unset.
    #[serde(default, deserialize_with = "opt_count")]
    pub micro_batch: Option<u64>,
    pub lr: LrSpec,
    #[serde(default, deserialize_with = "count")]
    pub warmup_steps: u64,
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// Cosine decays to lr·min_lr_ratio.
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Global gradient-norm clip; 0 disables.
    #[serde(default = "default_grad_clip")]
    pub grad_clip: f64,
    #[serde(default)]
    pub seed: u64,
    /// EMA decay of the gradient-noise-scale estimates.
    #[serde(default = "default_gns_ema")]
    pub gns_ema: f64,
    /// WSD: the 0-based step that starts the cooldown (default: the last fifth of the run).
    #[serde(default, deserialize_with = "opt_count", skip_serializing_if = "Option::is_none")]
    pub decay_start: Option<u64>,
    /// WSD: `linear` or `1-sqrt` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay_shape: Option<DecayShape>,
}

/// When the attempt ends: the first rule met wins. Steps or tokens is required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRule {
    #[serde(default, deserialize_with = "opt_count")]
    pub steps: Option<u64>,
    #[serde(default, deserialize_with = "opt_count")]
    pub tokens: Option<u64>,
    /// Stop once a validation loss is at or below this.
    #[serde(default)]
    pub target_val_loss: Option<f64>,
    /// Early stopping: stop after this many evaluations in a row without a new best validation
    /// loss (a data-limited run that has begun to overfit).
    #[serde(default, deserialize_with = "opt_count")]
    pub patience: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// Validation every k steps (and at the last step).
    #[serde(default = "default_eval_every", deserialize_with = "count")]
    pub every: u64,
    /// Number of fixed held-out windows.
    #[serde(default = "default_eval_windows", deserialize_with = "count")]
    pub windows: u64,
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self { every: default_eval_every(), windows: default_eval_windows() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// A checkpoint every k steps; 0 writes only the final one.
    #[serde(default, deserialize_with = "count")]
    pub every: u64,
    #[serde(default = "default_checkpoint_dir")]
    pub dir: PathBuf,
    /// How many of the newest checkpoints to keep.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Steps that get a checkpoint besides every `every`: where branches fork.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<u64>,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self { every: 0, dir: default_checkpoint_dir(), keep: default_keep(), at: Vec::new() }
    }
}

/// Where a branch starts: its parent's checkpoint at `step`, after `tokens` tokens from the root.
/// The branch continues the parent's step and token counts, weights, optimizer state and data
/// stream; its curve holds the steps after `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchStart {
    #[serde(deserialize_with = "count")]
    pub step: u64,
    #[serde(deserialize_with = "count")]
    pub tokens: u64,
    /// The parent's checkpoint folder (the worker fills it in).
    #[serde(default = "default_branch_dir")]
    pub dir: PathBuf,
}

fn default_branch_dir() -> PathBuf {
    PathBuf::from("branch")
}

fn default_device() -> String {
    "auto".into()
}
fn default_schedule() -> Schedule {
    Schedule::Cosine
}
fn default_min_lr_ratio() -> f64 {
    0.1
}
fn default_weight_decay() -> f64 {
    0.1
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_eps() -> f64 {
    1e-8
}
fn default_grad_clip() -> f64 {
    1.0
}
/// EMA decay of the gradient-noise-scale estimates when a spec sets none.
pub const DEFAULT_GNS_EMA: f64 = 0.99;

fn default_gns_ema() -> f64 {
    DEFAULT_GNS_EMA
}
fn default_eval_every() -> u64 {
    100
}
fn default_eval_windows() -> u64 {
    64
}
fn default_checkpoint_dir() -> PathBuf {
    PathBuf::from("checkpoints")
}
fn default_keep() -> usize {
    2
}

/// A count as TOML or JSON writes it: an integer, or an integral float (`2e8`).
#[derive(Deserialize)]
#[serde(untagged)]
enum CountNum {
    Int(i64),
    Float(f64),
}

impl CountNum {
    fn count<E: serde::de::Error>(self) -> std::result::Result<u64, E> {
        match self {
            CountNum::Int(i) if i >= 0 => Ok(i as u64),
            CountNum::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
            CountNum::Int(i) => Err(E::custom(format!("expected a count >= 0, got {i}"))),
            CountNum::Float(f) => Err(E::custom(format!("expected a whole count >= 0, got {f}"))),
        }
    }
}

/// Accepts a count written as an integer or as an integral float (`2e8`).
fn count<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    CountNum::deserialize(d)?.count()
}

/// An optional count; absent or null is None.
fn opt_count<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    Option::<CountNum>::deserialize(d)?.map(CountNum::count).transpose()
}

impl JobConfig {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| DomainError::ConfigParse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DomainError::Io { context: format!("reading config {}", path.display()), source: e })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The config as TOML (what `ladder-train` reads).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| DomainError::invalid("config", format!("cannot be written as TOML: {e}")))
    }

    /// Writes the config as TOML to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_toml()?)
            .map_err(|e| DomainError::Io { context: format!("writing {}", path.display()), source: e })
    }

    /// Sequences per micro-batch: `train.micro_batch`, else the whole batch. The one place this
    /// rule lives; `n_ctx` of 0 counts as 1.
    pub fn micro_seqs(&self) -> u64 {
        let n_ctx = u64::try_from(self.model.n_ctx).unwrap_or(1).max(1);
        self.train.micro_batch.unwrap_or(self.train.batch_tokens / n_ctx)
    }

    /// The model's shape, its vocabulary checked against the dataset's (when known).
    fn shape(&self, dataset_vocab: Option<i64>) -> Result<Shape> {
        let m = &self.model;
        let vocab = match (m.vocab, dataset_vocab) {
            (Some(v), Some(dv)) if v < dv => {
                return Err(DomainError::invalid(
                    "model.vocab",
                    format!("{v} is smaller than the dataset's vocabulary {dv}"),
                ));
            }
            (Some(v), _) => v,
            (None, Some(dv)) => dv,
            (None, None) => {
                return Err(DomainError::invalid("model.vocab", "not set and the dataset has no meta.json giving it"));
            }
        };
        let n_heads = match (m.n_heads, m.d_head) {
            (Some(h), Some(dh)) if h * dh != m.d_model => {
                return Err(DomainError::invalid(
                    "model.d_head",
                    format!("n_heads {h} × d_head {dh} != d_model {}", m.d_model),
                ));
            }
            (Some(h), _) => h,
            (None, Some(dh)) => {
                if dh <= 0 || m.d_model % dh != 0 {
                    return Err(DomainError::invalid(
                        "model.d_head",
                        format!("d_model {} is not divisible by d_head {dh}", m.d_model),
                    ));
                }
                m.d_model / dh
            }
            (None, None) => {
                return Err(DomainError::invalid("model.n_heads", "give n_heads or d_head"));
            }
        };
        let shape = Shape {
            n_layer: m.n_layer,
            d_model: m.d_model,
            n_heads,
            d_ff: match m.d_ff {
                Some(f) => f,
                None => m
                    .d_model
                    .checked_mul(4)
                    .ok_or_else(|| DomainError::invalid("model.d_model", format!("{} is too large", m.d_model)))?,
            },
            n_ctx: m.n_ctx,
            vocab,
        };
        shape.validate()?;
        Ok(shape)
    }

    /// The last step: from `stop`, counted from the root (a branch starts after its branch point).
    fn total_steps(&self) -> Result<u64> {
        let t = &self.train;
        // A branch counts from the root: its first step is the one after its branch point.
        let (start_step, start_tokens) = self.branch.as_ref().map_or((0, 0), |b| (b.step, b.tokens));
        if let Some(tok) = self.stop.tokens
            && tok <= start_tokens
        {
            return Err(DomainError::invalid(
                "stop.tokens",
                format!("{tok} is not past the branch point's {start_tokens} tokens"),
            ));
        }
        let steps_by_tokens = self.stop.tokens.map(|tok| start_step + (tok - start_tokens).div_ceil(t.batch_tokens));
        let total_steps = match (self.stop.steps, steps_by_tokens) {
            (Some(s), Some(k)) => s.min(k),
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => {
                return Err(DomainError::invalid(
                    "stop",
                    "give steps or tokens (target_val_loss alone may never be met)",
                ));
            }
        };
        if total_steps <= start_step {
            return Err(DomainError::invalid("stop", "the run would take 0 steps"));
        }
        Ok(total_steps)
    }

    /// Validates the config against the dataset vocabulary (when known) and derives the job.
    pub fn resolve(&self, dataset_vocab: Option<i64>) -> Result<Job> {
        let shape = self.shape(dataset_vocab)?;

        let t = &self.train;
        let n_ctx = shape.n_ctx as u64;
        if t.batch_tokens == 0 || t.batch_tokens % n_ctx != 0 {
            return Err(DomainError::invalid(
                "train.batch_tokens",
                format!("{} is not a positive multiple of n_ctx {n_ctx}", t.batch_tokens),
            ));
        }
        let batch_seqs = t.batch_tokens / n_ctx;
        let micro_seqs = self.micro_seqs();
        if micro_seqs == 0 || batch_seqs % micro_seqs != 0 {
            return Err(DomainError::invalid(
                "train.micro_batch",
                format!("the batch of {batch_seqs} sequences is not a multiple of the micro-batch {micro_seqs}"),
            ));
        }
        let lr = match t.lr {
            LrSpec::Value(v) => v,
            LrSpec::Rule(LrRule::Kaplan) => kaplan_lr(crate::accounting::Accounting::of(&shape).n as f64),
            LrSpec::PerWidth(w) => w.at(shape.d_model).unwrap_or(f64::NAN),
        };
        check_range("train.lr", lr, 0.0, 1.0, false)?;
        check_range("train.beta1", t.beta1, 0.0, 1.0, true)?;
        check_range("train.beta2", t.beta2, 0.0, 1.0, true)?;
        check_range("train.min_lr_ratio", t.min_lr_ratio, 0.0, 1.0, true)?;
        check_range("train.gns_ema", t.gns_ema, 0.0, 1.0, true)?;
        if !(t.weight_decay >= 0.0 && t.eps > 0.0 && t.grad_clip >= 0.0) {
            return Err(DomainError::invalid("train", "weight_decay and grad_clip must be >= 0, eps > 0"));
        }
        let total_steps = self.total_steps()?;
        if t.schedule == Schedule::Wsd
            && let Some(d) = t.decay_start
            && d >= total_steps
        {
            return Err(DomainError::invalid(
                "train.decay_start",
                format!("step {d} is not before the last step {total_steps}"),
            ));
        }
        if self.eval.every == 0 || self.eval.windows == 0 {
            return Err(DomainError::invalid("eval", "every and windows must be >= 1"));
        }
        if let Some(d) = self.data.max_tokens
            && d <= n_ctx
        {
            return Err(DomainError::invalid(
                "data.max_tokens",
                format!("D = {d} leaves no window of n_ctx {n_ctx} + 1 tokens"),
            ));
        }
        parse_device(&self.device)?;
        Ok(Job { config: self.clone(), shape, batch_seqs, micro_seqs, total_steps, peak_lr: lr })
    }
}

fn check_range(key: &str, v: f64, lo: f64, hi: f64, lo_inclusive: bool) -> Result<()> {
    let ok = v.is_finite() && v < hi && if lo_inclusive { v >= lo } else { v > lo };
    if ok {
        Ok(())
    } else {
        let open = if lo_inclusive { "[" } else { "(" };
        Err(DomainError::invalid(key, format!("{v} is outside {open}{lo}, {hi})")))
    }
}

/// A validated job with everything derived from its config.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: JobConfig,
    pub shape: Shape,
    /// Sequences per optimizer step.
    pub batch_seqs: u64,
    /// Sequences per micro-batch.
    pub micro_seqs: u64,
    pub total_steps: u64,
    pub peak_lr: f64,
}

impl Job {
    pub fn accumulation(&self) -> u64 {
        self.batch_seqs / self.micro_seqs
    }

    pub fn batch_tokens(&self) -> u64 {
        self.config.train.batch_tokens
    }
}

/// Kaplan et al. 2020 eq. D.1: LR(N) ≈ 0.003239 − 0.0001395·ln N.
pub fn kaplan_lr(n: f64) -> f64 {
    0.003239 - 0.0001395 * n.ln()
}

/// A parsed device request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    Cpu,
    Cuda(usize),
    Auto,
}

pub fn parse_device(s: &str) -> Result<DeviceRequest> {
    match s.trim() {
        "cpu" => Ok(DeviceRequest::Cpu),
        "cuda" => Ok(DeviceRequest::Cuda(0)),
        "auto" => Ok(DeviceRequest::Auto),
        other => other
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
            .map(DeviceRequest::Cuda)
            .ok_or_else(|| DomainError::UnknownDevice(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaplan_rule_matches_eq_d1() {
        // N = 1e6: 0.003239 − 0.0001395·ln(1e6) = 0.00131174 (computed independently in Python).
        assert!((kaplan_lr(1e6) - 0.001_311_736_277).abs() < 1e-11);
    }

    #[test]
    fn devices_parse() {
        assert_eq!(parse_device("cuda:3").ok(), Some(DeviceRequest::Cuda(3)));
        assert_eq!(parse_device("cpu").ok(), Some(DeviceRequest::Cpu));
        assert!(parse_device("cuda:x").is_err());
    }
}
