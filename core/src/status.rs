//! What the coordinator reports of its sweeps, jobs, workers, datasets and checkpoints: the one
//! view of each that the CLI's tables, its JSON output and its exports are made from. The
//! coordinator builds these from its records; `ladder-proto` carries them over the wire.
use serde::{Deserialize, Serialize};

use crate::accounting::Accounting;
use crate::events::MetricPoint;
use crate::job::JobConfig;
use crate::shape::Shape;
use crate::state::{FailureKind, JobState, SweepState};

/// The newest metric point of a job, as progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub step: u64,
    pub tokens: u64,
    /// None before the first point.
    pub train_loss: Option<f64>,
    /// The newest validation loss; None before the first evaluation.
    pub val_loss: Option<f64>,
    /// NaN when an older build wrote it as null.
    #[serde(deserialize_with = "nan_if_null")]
    pub tokens_per_s: f64,
}

/// A float written as `null` (serde_json's form of NaN) reads as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Why a job's last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(rename = "failure")]
    pub kind: FailureKind,
    #[serde(rename = "failure_message")]
    pub message: String,
}

/// One job as the coordinator reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: u64,
    pub sweep_id: u64,
    /// Position in the sweep's expansion.
    pub index: u32,
    pub state: JobState,
    /// Current attempt, 1-based; 0 before the first lease.
    pub attempt: u32,
    /// Restarts charged (failed attempts retried).
    pub restarts: u32,
    pub max_restarts: u32,
    #[serde(flatten)]
    pub shape: Shape,
    /// N (exact non-embedding), Kaplan's 12·L·d², N_total and FLOPs per token.
    #[serde(flatten)]
    pub accounting: Accounting,
    /// B, tokens per step.
    pub batch_tokens: u64,
    /// D, the training tokens the job may use; None = all.
    pub dataset_tokens: Option<u64>,
    pub seed: u64,
    /// Peak learning rate.
    pub lr: f64,
    pub total_steps: u64,
    #[serde(flatten)]
    pub progress: Progress,
    /// The worker holding the lease, while running.
    #[serde(rename = "worker")]
    pub worker_id: Option<String>,
    #[serde(flatten)]
    pub failure: Option<Failure>,
    /// Step of the newest complete checkpoint; 0 = none.
    pub checkpoint_step: u64,
    /// The checkpoint step the current attempt resumed from; 0 = it started fresh.
    pub resumed_from_step: u64,
    /// Why a queued job waits: no registered slot can hold it (it stays queued until one can, or
    /// it is cancelled).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub waiting: Option<String>,
    /// A failed job's last log lines (its newest attempt's).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub log_tail: Vec<String>,
    /// Set for a branch: its parent, where it forks and what it changes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub branch: Option<crate::branch::BranchOf>,
    /// A sealed target: no fit sees it, and its losses are withheld (None in `progress`, its
    /// curve refused) until the sweep's predictions are locked; `ladder predict` scores it.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub sealed: bool,
    /// The trainer config; present in listings, absent in watch updates (the hot progress only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub config: Option<JobConfig>,
}

impl JobStatus {
    /// Seconds left at the current rate; None when unknown.
    pub fn eta_s(&self) -> Option<f64> {
        if self.state != JobState::Running || self.progress.tokens_per_s <= 0.0 {
            return None;
        }
        Some(
            self.total_steps.saturating_sub(self.progress.step) as f64 * self.batch_tokens as f64
                / self.progress.tokens_per_s,
        )
    }

    /// Warmup steps of its schedule (0 when the config is not known).
    pub fn warmup_steps(&self) -> u64 {
        self.config.as_ref().map_or(0, |c| c.train.warmup_steps)
    }

    /// `LxD` as tables print a shape.
    pub fn shape_label(&self) -> String {
        format!("{}x{}", self.shape.n_layer, self.shape.d_model)
    }
}

/// How many of a sweep's jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    #[serde(rename = "jobs_total")]
    pub total: u32,
    #[serde(rename = "jobs_queued")]
    pub queued: u32,
    #[serde(rename = "jobs_running")]
    pub running: u32,
    #[serde(rename = "jobs_succeeded")]
    pub succeeded: u32,
    #[serde(rename = "jobs_failed")]
    pub failed: u32,
    #[serde(rename = "jobs_cancelled")]
    pub cancelled: u32,
    /// Branches waiting for their parent's checkpoint.
    #[serde(rename = "jobs_pending", default)]
    pub pending: u32,
}

impl JobCounts {
    /// Counts one more job in `state`.
    pub fn add(&mut self, state: JobState) {
        self.total += 1;
        *self.slot(state) += 1;
    }

    /// The counter of `state`.
    pub fn slot(&mut self, state: JobState) -> &mut u32 {
        match state {
            JobState::Queued => &mut self.queued,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
            JobState::Cancelled => &mut self.cancelled,
            JobState::Pending => &mut self.pending,
        }
    }
}

/// One sweep as the coordinator reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStatus {
    pub id: u64,
    pub name: String,
    pub state: SweepState,
    /// The spec exactly as submitted.
    #[serde(skip_serializing)]
    pub spec_toml: String,
    pub dataset: String,
    pub dataset_sha256: String,
    #[serde(flatten)]
    pub jobs: JobCounts,
    /// Unix milliseconds.
    pub created_ms: i64,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub id: String,
    pub name: String,
    pub slots: Vec<String>,
    /// Unix milliseconds of the last register or heartbeat.
    pub last_seen_ms: i64,
    /// Jobs whose current attempt it holds.
    pub running_jobs: Vec<u64>,
}

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    /// sha256 over train.bin then val.bin: the content identity.
    pub sha256: String,
    pub train_tokens: u64,
    pub val_tokens: u64,
    pub vocab: u32,
    pub tokenizer: String,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub job_id: u64,
    pub step: u64,
    /// The attempt that wrote it.
    pub attempt: u32,
    pub bytes: u64,
    pub sha256: String,
    /// Why the retention policy keeps it ("newest 2", "final", "branch point of job 12", …).
    #[serde(default)]
    pub kept: Vec<String>,
}

/// The checkpoints a job keeps, its sweep's retention policy, and how many that policy deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointList {
    pub job_id: u64,
    pub checkpoints: Vec<CheckpointInfo>,
    pub policy: crate::retention::Retention,
    pub deleted: u64,
}

/// One stored point of a curve and the attempt that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedPoint {
    #[serde(flatten)]
    pub point: MetricPoint,
    pub attempt: u32,
}
