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
    /// When the lease was granted (0 in records written before this was kept).
    #[serde(default)]
    pub granted_ms: i64,
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
    /// Cold: kept in `JOB_CONFIGS`, never in the hot record; empty until [`Self::with_config`].
    /// (Records of format 3 and older carry it, which the migration moves.)
    #[serde(default, skip_serializing)]
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
    /// The job `id`; NotFound when absent, Storage when its record does not read.
    pub fn load<R: crate::store::Reader>(r: &R, id: u64) -> crate::error::Result<Self> {
        use redb::ReadableTable;
        let t = r.table(crate::store::JOBS)?;
        let v = t.get(id)?.ok_or_else(|| crate::error::CoordError::NotFound(format!("job {id}")))?;
        crate::store::from_json(v.value())
            .map_err(|e| crate::error::CoordError::Storage(format!("job {id}: its record does not read: {e}")))
    }

    /// Writes the hot record; a job that became final leaves its sweep's open set.
    pub fn save(&self, txn: &redb::WriteTransaction) -> crate::error::Result<()> {
        txn.open_table(crate::store::JOBS)?.insert(self.id, crate::store::to_json(self)?.as_slice())?;
        if self.state.is_final() {
            txn.open_table(crate::store::OPEN_JOBS)?.remove((self.sweep_id, self.id))?;
        }
        Ok(())
    }

    /// Writes the cold config, once, at submission (and opens the job in its sweep).
    pub fn save_config(&self, txn: &redb::WriteTransaction) -> crate::error::Result<()> {
        txn.open_table(crate::store::JOB_CONFIGS)?.insert(self.id, self.config_toml.as_str())?;
        if !self.state.is_final() {
            txn.open_table(crate::store::OPEN_JOBS)?.insert((self.sweep_id, self.id), ())?;
        }
        Ok(())
    }

    /// The record with its config filled in from `JOB_CONFIGS`.
    pub fn with_config<R: crate::store::Reader>(mut self, r: &R) -> crate::error::Result<Self> {
        use redb::ReadableTable;
        if self.config_toml.is_empty()
            && let Some(v) = r.table(crate::store::JOB_CONFIGS)?.get(self.id)?
        {
            self.config_toml = v.value().to_string();
        }
        Ok(self)
    }

    /// Sequences per micro-batch, from the stored config (the whole batch when unset).
    pub fn micro_seqs<R: crate::store::Reader>(&self, r: &R) -> u64 {
        use redb::ReadableTable;
        let whole = self.batch_tokens / (self.shape.n_ctx.max(1) as u64);
        let Ok(t) = r.table(crate::store::JOB_CONFIGS) else { return whole };
        let Ok(Some(v)) = t.get(self.id) else { return whole };
        ladder_core::job::JobConfig::from_toml(v.value(), "job").ok().and_then(|c| c.train.micro_batch).unwrap_or(whole)
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

/// One stored point of a curve and the attempt that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    pub point: ladder_core::events::MetricPoint,
    pub attempt: u32,
}

impl StoredPoint {
    /// The on-disk form: the protobuf MetricPoint, attempt included.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        let mut p = pb::MetricPoint::from(&self.point);
        p.attempt = self.attempt;
        p.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> crate::error::Result<Self> {
        use prost::Message;
        let p = pb::MetricPoint::decode(bytes).map_err(crate::error::CoordError::storage)?;
        let point = ladder_core::events::MetricPoint::try_from(&p).map_err(crate::error::CoordError::storage)?;
        Ok(Self { point, attempt: p.attempt })
    }
}

/// A stored checkpoint, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub job_id: u64,
    pub step: u64,
    pub attempt: u32,
    pub bytes: u64,
    pub sha256: String,
    pub chunks: u32,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
