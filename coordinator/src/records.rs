//! What the store keeps per sweep, job, checkpoint, dataset and worker, and its wire form.
use ladder_core::accounting::Accounting;
use ladder_core::shape::Shape;
use ladder_proto::pb;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SweepState {
    Running,
    Done,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    pub id: u64,
    pub name: String,
    pub spec_toml: String,
    pub dataset: String,
    pub dataset_sha256: String,
    pub state: SweepState,
    pub created_ms: i64,
    pub job_ids: Vec<u64>,
}

pub use ladder_core::{FailureKind as Failure, JobState};

/// The current attempt's hold on a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub worker_id: String,
    pub expires_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub step: u64,
    pub tokens: u64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub tokens_per_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: u64,
    pub sweep_id: u64,
    pub index: u32,
    pub state: JobState,
    /// Current attempt, 1-based; 0 before the first lease.
    pub attempt: u32,
    /// Attempts lost or crashed so far.
    pub restarts: u32,
    pub max_restarts: u32,
    pub config_toml: String,
    pub shape: Shape,
    pub accounting: Accounting,
    pub total_steps: u64,
    pub lr: f64,
    pub batch_tokens: u64,
    pub dataset_tokens: Option<u64>,
    pub seed: u64,
    pub dataset_sha256: String,
    /// The job's device request (`auto`, `cpu`, `cuda`, `cuda:N`), matched against slots.
    #[serde(default)]
    pub device: String,
    pub lease: Option<Lease>,
    pub progress: Progress,
    pub failure: Option<(Failure, String)>,
    pub checkpoint_step: u64,
    /// The checkpoint step the current attempt resumed from; 0 = fresh.
    #[serde(default)]
    pub resumed_from_step: u64,
    /// Training FLOPs the whole job runs (3 × exact forward FLOPs per token × tokens): the
    /// queue runs the costliest first.
    #[serde(default)]
    pub cost_flops: f64,
    /// Device memory one attempt needs, by estimate (`ladder_core::memory`).
    #[serde(default)]
    pub memory_bytes: u64,
    /// Jobs of this sweep with the same class may train fused, up to `fuse` at once.
    #[serde(default)]
    pub fuse_class: Option<u64>,
    #[serde(default)]
    pub fuse: u32,
}

impl JobRecord {
    pub fn to_pb(&self) -> pb::Job {
        let state = pb::JobState::from(self.state);
        pb::Job {
            id: self.id,
            sweep_id: self.sweep_id,
            index: self.index,
            state: state as i32,
            attempt: self.attempt,
            max_restarts: self.max_restarts,
            config_toml: self.config_toml.clone(),
            n_layer: self.shape.n_layer as u32,
            d_model: self.shape.d_model as u32,
            n_ctx: self.shape.n_ctx as u32,
            batch_tokens: self.batch_tokens,
            dataset_tokens: self.dataset_tokens.unwrap_or(0),
            seed: self.seed,
            lr: self.lr,
            n_params: self.accounting.n,
            n_kaplan: self.accounting.n_kaplan,
            n_total: self.accounting.n_total,
            fwd_flops_per_token: self.accounting.fwd_flops_per_token,
            total_steps: self.total_steps,
            step: self.progress.step,
            tokens: self.progress.tokens,
            train_loss: self.progress.train_loss,
            val_loss: self.progress.val_loss.unwrap_or(f64::NAN),
            tokens_per_s: self.progress.tokens_per_s,
            worker_id: self.lease.as_ref().map(|l| l.worker_id.clone()).unwrap_or_default(),
            failure: self.failure.as_ref().map_or(pb::FailureKind::Unspecified, |f| f.0.into()) as i32,
            failure_message: self.failure.as_ref().map(|f| f.1.clone()).unwrap_or_default(),
            checkpoint_step: self.checkpoint_step,
            resumed_from_step: self.resumed_from_step,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub attempt: u32,
    pub bytes: u64,
    pub sha256: String,
    pub chunks: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub name: String,
    pub sha256: String,
    pub meta_json: String,
    pub vocab: u32,
    pub tokenizer: String,
    pub train_bytes: u64,
    pub val_bytes: u64,
    pub chunks: [u32; 2],
}

impl DatasetRecord {
    pub fn to_pb(&self) -> pb::Dataset {
        pb::Dataset {
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            train_tokens: self.train_bytes / 2,
            val_tokens: self.val_bytes / 2,
            vocab: self.vocab,
            tokenizer: self.tokenizer.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub id: String,
    pub name: String,
    pub slots: Vec<String>,
    pub last_seen_ms: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
