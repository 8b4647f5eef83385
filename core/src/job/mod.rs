//! The job config: one sweep point, typed from the spec to the trainer. The coordinator plans
//! it (with the resolved learning rate written in), stores it, and sends it on the wire as its
//! own message; the worker writes it as `job.toml` for the trainer, which parses it strictly and
//! validates it into a [`Job`].
//!
//! - this module: the schema;
//! - [`defaults`]: what an unset field takes; [`count`]: counts written as `2e8`;
//! - [`lr`]: the learning-rate rules; [`device`]: device requests and slots;
//! - [`resolve`]: validation, and the [`Job`] it derives.
pub mod count;
pub mod defaults;
pub mod device;
pub mod lr;
pub mod resolve;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use defaults::DEFAULT_GNS_EMA;
pub use device::{DeviceRequest, Slot};
pub use lr::{LrRule, LrSpec, PerWidth, kaplan_lr};
pub use resolve::Job;

use crate::error::{DomainError, Result};

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
    /// `cpu`, `cuda` (any GPU), `cuda:N` or `auto` (a GPU when the slot has one).
    #[serde(default = "defaults::device")]
    pub device: DeviceRequest,
    /// CPU threads for libtorch; unset keeps libtorch's default.
    #[serde(default)]
    pub threads: Option<i32>,
    /// On CUDA, run each training step as a captured CUDA graph after a few eager warm-up steps
    /// (eager where capture fails). False: eager steps.
    #[serde(default = "defaults::yes", skip_serializing_if = "defaults::is_true")]
    pub cuda_graphs: bool,
    /// Measure the gradient noise scale from the micro-batches (default). False skips the
    /// per-micro-batch norms; points then carry no B_simple (for measuring what it costs).
    #[serde(default = "defaults::yes", skip_serializing_if = "defaults::is_true")]
    pub gns: bool,
    /// A branch: the run starts from its parent's checkpoint (see [`BranchStart`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchStart>,
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
    #[serde(default, deserialize_with = "count::opt_count")]
    pub max_tokens: Option<u64>,
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
    #[serde(deserialize_with = "count::count")]
    pub batch_tokens: u64,
    /// Sequences per micro-batch (gradient accumulation); the whole batch when unset.
    #[serde(default, deserialize_with = "count::opt_count")]
    pub micro_batch: Option<u64>,
    pub lr: LrSpec,
    #[serde(default, deserialize_with = "count::count")]
    pub warmup_steps: u64,
    #[serde(default = "defaults::schedule")]
    pub schedule: Schedule,
    /// Cosine decays to lr·min_lr_ratio.
    #[serde(default = "defaults::min_lr_ratio")]
    pub min_lr_ratio: f64,
    #[serde(default = "defaults::weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "defaults::beta1")]
    pub beta1: f64,
    #[serde(default = "defaults::beta2")]
    pub beta2: f64,
    #[serde(default = "defaults::eps")]
    pub eps: f64,
    /// Global gradient-norm clip; 0 disables.
    #[serde(default = "defaults::grad_clip")]
    pub grad_clip: f64,
    #[serde(default)]
    pub seed: u64,
    /// EMA decay of the gradient-noise-scale estimates.
    #[serde(default = "defaults::gns_ema")]
    pub gns_ema: f64,
    /// WSD: the 0-based step that starts the cooldown (default: the last fifth of the run).
    #[serde(default, deserialize_with = "count::opt_count", skip_serializing_if = "Option::is_none")]
    pub decay_start: Option<u64>,
    /// WSD: `linear` or `1-sqrt` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay_shape: Option<DecayShape>,
    /// A branch's re-warmup: over this many steps from the branch point the rate ramps linearly
    /// from `rewarmup_from_lr` (the trunk's) to this job's (a batch window's scaled rate).
    #[serde(default, deserialize_with = "count::opt_count", skip_serializing_if = "Option::is_none")]
    pub rewarmup_steps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewarmup_from_lr: Option<f64>,
}

/// When the attempt ends: the first rule met wins. Steps or tokens is required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRule {
    #[serde(default, deserialize_with = "count::opt_count")]
    pub steps: Option<u64>,
    #[serde(default, deserialize_with = "count::opt_count")]
    pub tokens: Option<u64>,
    /// Stop once a validation loss is at or below this.
    #[serde(default)]
    pub target_val_loss: Option<f64>,
    /// Early stopping: stop after this many evaluations in a row without a new best validation
    /// loss (a data-limited run that has begun to overfit).
    #[serde(default, deserialize_with = "count::opt_count")]
    pub patience: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// Validation every k steps (and at the last step).
    #[serde(default = "defaults::eval_every", deserialize_with = "count::count")]
    pub every: u64,
    /// Number of fixed held-out windows.
    #[serde(default = "defaults::eval_windows", deserialize_with = "count::count")]
    pub windows: u64,
}

impl Default for EvalSpec {
    fn default() -> Self {
        Self { every: defaults::eval_every(), windows: defaults::eval_windows() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// A checkpoint every k steps; 0 writes only the final one.
    #[serde(default, deserialize_with = "count::count")]
    pub every: u64,
    #[serde(default = "defaults::checkpoint_dir")]
    pub dir: PathBuf,
    /// How many of the newest checkpoints to keep.
    #[serde(default = "defaults::keep")]
    pub keep: usize,
    /// Steps that get a checkpoint besides every `every`: where branches fork.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<u64>,
}

impl Default for CheckpointSpec {
    fn default() -> Self {
        Self { every: 0, dir: defaults::checkpoint_dir(), keep: defaults::keep(), at: Vec::new() }
    }
}

/// Where a branch starts: its parent's checkpoint at `step`, after `tokens` tokens from the root.
/// The branch continues the parent's step and token counts, weights, optimizer state and data
/// stream; its curve holds the steps after `step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchStart {
    #[serde(deserialize_with = "count::count")]
    pub step: u64,
    #[serde(deserialize_with = "count::count")]
    pub tokens: u64,
    /// The parent's checkpoint folder (the worker fills it in).
    #[serde(default = "defaults::branch_dir")]
    pub dir: PathBuf,
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

    /// The config's identity: two configs are the same job exactly when these are equal (the
    /// plan keeps one job per identity; fusing classes hash it).
    pub fn identity(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| DomainError::invalid("config", format!("cannot be written: {e}")))
    }

    /// Sequences per micro-batch: `train.micro_batch`, else the whole batch. The one place this
    /// rule lives; `n_ctx` of 0 counts as 1.
    pub fn micro_seqs(&self) -> u64 {
        let n_ctx = u64::try_from(self.model.n_ctx).unwrap_or(1).max(1);
        self.train.micro_batch.unwrap_or(self.train.batch_tokens / n_ctx)
    }
}
