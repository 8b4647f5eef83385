//! What the store keeps per sweep, job, checkpoint, dataset and worker (as JSON in
//! [`crate::tables`]), and each record's domain view for the services to answer with.
use ladder_core::accounting::Accounting;
use ladder_core::job::JobConfig;
use ladder_core::shape::Shape;
use ladder_core::status::{
    CheckpointInfo, DatasetInfo, Failure as FailureView, JobCounts, JobStatus, Progress, SweepStatus,
};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};
use crate::tables::{JOB_CONFIGS, JOBS, OPEN_JOBS, Reader, from_json, to_json};

pub use ladder_core::{FailureKind as Failure, JobState, SweepState};

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

impl SweepRecord {
    pub fn status(&self, jobs: JobCounts) -> SweepStatus {
        SweepStatus {
            id: self.id,
            name: self.name.clone(),
            state: self.state,
            spec_toml: self.spec_toml.clone(),
            dataset: self.dataset.clone(),
            dataset_sha256: self.dataset_sha256.clone(),
            jobs,
            created_ms: self.created_ms,
        }
    }
}

/// The current attempt's hold on a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub worker_id: String,
    pub expires_ms: i64,
    /// When the lease was granted (0 in records written before this was kept).
    #[serde(default)]
    pub granted_ms: i64,
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
    /// Records of format 3 and older carried the config as TOML here; the migration moves it.
    #[serde(default, skip_serializing)]
    pub config_toml: String,
    /// Cold: kept in `JOB_CONFIGS`, never in the hot record; None until [`Self::with_config`].
    #[serde(skip)]
    pub config: Option<JobConfig>,
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
    /// Training FLOPs the whole job runs: the queue runs the costliest first.
    #[serde(default)]
    pub cost_flops: f64,
    /// Device memory one attempt needs, by estimate (`ladder_core::memory`).
    #[serde(default)]
    pub memory_bytes: u64,
    /// Sequences per micro-batch (format 5; older records take it from their config).
    #[serde(default)]
    pub micro_seqs: u64,
    /// Jobs of this sweep with the same class may train fused, up to `fuse` at once.
    #[serde(default)]
    pub fuse_class: Option<u64>,
    #[serde(default)]
    pub fuse: u32,
}

impl JobRecord {
    /// The job `id`; NotFound when absent, Storage when its record does not read.
    pub fn load<R: Reader>(r: &R, id: u64) -> Result<Self> {
        let t = r.table(JOBS)?;
        let v = t.get(id)?.ok_or_else(|| CoordError::NotFound(format!("job {id}")))?;
        from_json(v.value()).map_err(|e| CoordError::Storage(format!("job {id}: its record does not read: {e}")))
    }

    /// Writes the hot record; a job that became final leaves its sweep's open set.
    pub fn save(&self, txn: &WriteTransaction) -> Result<()> {
        txn.open_table(JOBS)?.insert(self.id, to_json(self)?.as_slice())?;
        if self.state.is_final() {
            txn.open_table(OPEN_JOBS)?.remove((self.sweep_id, self.id))?;
        }
        Ok(())
    }

    /// Writes the cold config, once, at submission (and opens the job in its sweep).
    pub fn save_config(&self, txn: &WriteTransaction, config: &JobConfig) -> Result<()> {
        txn.open_table(JOB_CONFIGS)?.insert(self.id, serde_json::to_string(config)?.as_str())?;
        if !self.state.is_final() {
            txn.open_table(OPEN_JOBS)?.insert((self.sweep_id, self.id), ())?;
        }
        Ok(())
    }

    /// The record with its config read from `JOB_CONFIGS`.
    pub fn with_config<R: Reader>(mut self, r: &R) -> Result<Self> {
        if self.config.is_none()
            && let Some(v) = r.table(JOB_CONFIGS)?.get(self.id)?
        {
            let config = serde_json::from_str(v.value())
                .map_err(|e| CoordError::Storage(format!("job {}: its config does not read: {e}", self.id)))?;
            self.config = Some(config);
        }
        Ok(self)
    }

    /// A job's place in the queue: the costliest first, then by id.
    pub fn rank(&self) -> u64 {
        // In MFLOPs, so 1e24-FLOP jobs still order; a NaN or negative cost ranks last.
        let cost = self.cost_flops;
        let mflops = if cost.is_finite() && cost > 0.0 { cost / 1e6 } else { 0.0 };
        u64::MAX - (mflops.min(u64::MAX as f64 / 2.0) as u64)
    }

    /// What the services report of the job.
    pub fn status(&self) -> JobStatus {
        JobStatus {
            id: self.id,
            sweep_id: self.sweep_id,
            index: self.index,
            state: self.state,
            attempt: self.attempt,
            restarts: self.restarts,
            max_restarts: self.max_restarts,
            shape: self.shape,
            accounting: self.accounting,
            batch_tokens: self.batch_tokens,
            dataset_tokens: self.dataset_tokens,
            seed: self.seed,
            lr: self.lr,
            total_steps: self.total_steps,
            progress: self.progress.clone(),
            worker_id: self.lease.as_ref().map(|l| l.worker_id.clone()),
            failure: self.failure.as_ref().map(|(kind, message)| FailureView { kind: *kind, message: message.clone() }),
            checkpoint_step: self.checkpoint_step,
            resumed_from_step: self.resumed_from_step,
            config: self.config.clone(),
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
    /// `meta.json` as uploaded, served to workers byte for byte.
    pub meta_json: String,
    pub vocab: u32,
    pub tokenizer: String,
    pub train_bytes: u64,
    pub val_bytes: u64,
    pub chunks: [u32; 2],
}

impl DatasetRecord {
    pub fn info(&self) -> DatasetInfo {
        DatasetInfo {
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
    /// sha256 of the bearer token the worker registered with ("" without tokens): every later
    /// call for this worker id must carry the same credential.
    #[serde(default)]
    pub credential: String,
}

/// A stored checkpoint and the chunks it is kept in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub info: CheckpointInfo,
    pub chunks: u32,
}
