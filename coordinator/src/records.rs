//! What the store keeps per sweep, job, checkpoint, dataset and worker (as JSON in
//! [`crate::tables`]), and each record's domain view for the services to answer with.
use ladder_core::accounting::Accounting;
use ladder_core::job::{DeviceRequest, JobConfig};
use ladder_core::shape::Shape;
use ladder_core::status::{
    CheckpointInfo, DatasetInfo, Failure as FailureView, JobCounts, JobStatus, Progress, SweepStatus,
};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};
use crate::tables::{JOB_CONFIGS, JOB_COUNTS, JOBS, LEASES, OPEN_JOBS, Reader, SWEEP_COUNTS, from_json, to_json};

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
    /// Which checkpoints each job keeps (format 7; older sweeps take the default).
    #[serde(default)]
    pub retention: ladder_core::retention::Retention,
    /// Its sealed targets' job ids (format 9), in plan order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<u64>,
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

/// A float that an older build may have written as `null` (serde_json's form of NaN) reads as
/// NaN instead of failing the record.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A device request as records store it; "" (older records) is `auto`.
fn device_or_auto<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<DeviceRequest, D::Error> {
    match String::deserialize(d)?.as_str() {
        "" => Ok(DeviceRequest::Auto),
        s => s.parse().map_err(serde::de::Error::custom),
    }
}

/// A job state as a key of the count tables.
pub fn state_key(s: JobState) -> u8 {
    match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        JobState::Succeeded => 2,
        JobState::Failed => 3,
        JobState::Cancelled => 4,
        JobState::Pending => 5,
    }
}

/// Every job state, in key order.
pub const STATES: [JobState; 6] = [
    JobState::Queued,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
    JobState::Pending,
];

/// Moves one job of `sweep_id` from state `from` (None: a new job) to `to` in the count tables.
pub fn count_move(txn: &WriteTransaction, sweep_id: u64, from: Option<JobState>, to: JobState) -> Result<()> {
    let mut all = txn.open_table(JOB_COUNTS)?;
    let mut per = txn.open_table(SWEEP_COUNTS)?;
    if let Some(f) = from {
        let k = state_key(f);
        let n = all.get(k)?.map_or(0, |v| v.value());
        all.insert(k, n.saturating_sub(1))?;
        let n = per.get((sweep_id, k))?.map_or(0, |v| v.value());
        per.insert((sweep_id, k), n.saturating_sub(1))?;
    }
    let k = state_key(to);
    let n = all.get(k)?.map_or(0, |v| v.value());
    all.insert(k, n.saturating_add(1))?;
    let n = per.get((sweep_id, k))?.map_or(0, |v| v.value());
    per.insert((sweep_id, k), n.saturating_add(1))?;
    Ok(())
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
    #[serde(deserialize_with = "nan_if_null")]
    pub lr: f64,
    pub batch_tokens: u64,
    pub dataset_tokens: Option<u64>,
    pub seed: u64,
    pub dataset_sha256: String,
    /// The job's device request, matched against slots.
    #[serde(default, deserialize_with = "device_or_auto")]
    pub device: DeviceRequest,
    pub lease: Option<Lease>,
    pub progress: Progress,
    pub failure: Option<(Failure, String)>,
    pub checkpoint_step: u64,
    /// The checkpoint step the current attempt resumed from; 0 = fresh.
    #[serde(default)]
    pub resumed_from_step: u64,
    /// Training FLOPs the whole job runs: the queue runs the costliest first.
    #[serde(default, deserialize_with = "nan_if_null")]
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
    /// Every point 1..=this is stored: the curve has no hole up to here (format 5). A checkpoint
    /// past it is refused; a resume point never lies beyond it.
    #[serde(default)]
    pub contiguous: u64,
    /// Runs alone on its device: it ran out of memory beside other jobs (format 5).
    #[serde(default)]
    pub exclusive: bool,
    /// A branch: its parent, where it forks, what it changes (format 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<ladder_core::branch::BranchOf>,
    /// Checkpoints of this job the retention policy has deleted.
    #[serde(default)]
    pub checkpoints_deleted: u64,
    /// Bytes of log lines it keeps (format 7).
    #[serde(default)]
    pub log_bytes: u64,
    /// A sealed target (format 9): no fit sees it; its losses are withheld until the sweep's
    /// predictions are locked ([`crate::app::predictions`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
    /// The state this record had when read (None: a new job), so that saving it moves the counts.
    #[serde(skip)]
    pub loaded_state: Option<JobState>,
}

impl JobRecord {
    /// The job `id`; NotFound when absent, Storage when its record does not read.
    pub fn load<R: Reader>(r: &R, id: u64) -> Result<Self> {
        let t = r.table(JOBS)?;
        let v = t.get(id)?.ok_or_else(|| CoordError::NotFound(format!("job {id}")))?;
        Self::decode(id, v.value())
    }

    /// A stored record of job `id`, remembering its state for the counts: every record read
    /// from the store comes through here.
    pub fn decode(id: u64, bytes: &[u8]) -> Result<Self> {
        let mut job: Self =
            from_json(bytes).map_err(|e| CoordError::Storage(format!("job {id}: its record does not read: {e}")))?;
        job.loaded_state = Some(job.state);
        Ok(job)
    }

    /// Writes the hot record; a job whose state changed moves in the counts, and one that became
    /// final leaves its sweep's open set.
    pub fn save(&mut self, txn: &WriteTransaction) -> Result<()> {
        txn.open_table(JOBS)?.insert(self.id, to_json(self)?.as_slice())?;
        if self.loaded_state != Some(self.state) {
            count_move(txn, self.sweep_id, self.loaded_state, self.state)?;
            self.loaded_state = Some(self.state);
        }
        if self.state.is_final() {
            txn.open_table(OPEN_JOBS)?.remove((self.sweep_id, self.id))?;
        }
        Ok(())
    }

    /// Records that this job's current lease is held by its worker (the index heartbeats and
    /// listings read instead of scanning every job).
    pub fn index_lease(&self, txn: &WriteTransaction) -> Result<()> {
        if let Some(l) = &self.lease {
            txn.open_table(LEASES)?.insert((l.worker_id.as_str(), self.id), self.attempt)?;
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

    /// What the services report of the job; a sealed target's losses are left out (they are
    /// read through `ladder predict`, once the predictions are locked).
    pub fn status(&self) -> JobStatus {
        let mut progress = self.progress.clone();
        if self.sealed {
            (progress.train_loss, progress.val_loss) = (None, None);
        }
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
            progress,
            worker_id: self.lease.as_ref().map(|l| l.worker_id.clone()),
            failure: self.failure.as_ref().map(|(kind, message)| FailureView { kind: *kind, message: message.clone() }),
            checkpoint_step: self.checkpoint_step,
            resumed_from_step: self.resumed_from_step,
            waiting: match (self.state, self.branch) {
                (JobState::Pending, Some(b)) => {
                    Some(format!("waits for job {}'s checkpoint at step {} ({} tokens)", b.parent, b.step, b.tokens))
                }
                _ => None,
            },
            branch: self.branch,
            log_tail: Vec::new(),
            sealed: self.sealed,
            config: self.config.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub attempt: u32,
    pub bytes: u64,
    pub sha256: String,
    /// Format 6 kept the bytes in redb, in this many chunks.
    #[serde(default, skip_serializing)]
    pub chunks: u32,
    /// The file that holds the bytes ([`crate::files`]; format 7).
    #[serde(default)]
    pub file: String,
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
    /// Each slot's device memory in bytes, in slot order (0: a CPU slot, or unknown).
    #[serde(default)]
    pub slot_memory: Vec<u64>,
}

/// A stored checkpoint and the file that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub info: CheckpointInfo,
    pub file: String,
}
