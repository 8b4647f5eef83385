//! Every table of the store, its key and value layout, and the helpers that read and write
//! records: the one place the on-disk layout is defined. Values are the store's own encodings:
//! JSON records (`crate::records`), points in [`crate::codec`]'s layout, blob chunks as bytes.
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;

/// Bumped whenever a table's key or value layout changes; [`migrate`] carries older stores forward.
pub const FORMAT_VERSION: u64 = 9;

/// "format_version", "next_sweep_id", "next_job_id".
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// sweep id → SweepRecord (JSON).
pub const SWEEPS: TableDefinition<u64, &[u8]> = TableDefinition::new("sweeps");
/// sweep name → sweep id.
pub const SWEEP_NAMES: TableDefinition<&str, u64> = TableDefinition::new("sweep_names");
/// job id → JobRecord (JSON).
pub const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// job id → its trainer config (JSON; TOML before format 5): cold, written once at submission,
/// apart from the hot record that every report and heartbeat rewrites (format 4).
pub const JOB_CONFIGS: TableDefinition<u64, &str> = TableDefinition::new("job_configs");
/// (sweep id, job id) of every job not yet final: a sweep is done when its range is empty
/// (format 4).
pub const OPEN_JOBS: TableDefinition<(u64, u64), ()> = TableDefinition::new("open_jobs");

/// Jobs per state (the state's [`crate::records::state_key`]) → count, across every sweep
/// (format 5): a scrape reads five keys, not every job.
pub const JOB_COUNTS: TableDefinition<u8, u64> = TableDefinition::new("job_counts");
/// (sweep id, state key) → the sweep's jobs in that state (format 5).
pub const SWEEP_COUNTS: TableDefinition<(u64, u8), u32> = TableDefinition::new("sweep_counts");
/// (parent job, step, branch job): the branches that fork from a parent's checkpoint (format 6).
pub const BRANCHES: TableDefinition<(u64, u64, u64), ()> = TableDefinition::new("branches");
/// (job, seq) → a log line (JSON): trainer stderr and worker events (format 6).
pub const LOGS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("logs");
/// sweep id → bytes of log lines its jobs keep (format 7).
pub const SWEEP_LOG_BYTES: TableDefinition<u64, u64> = TableDefinition::new("sweep_log_bytes");

/// sweep id → its sealed targets' locked predictions ([`crate::app::predictions`]; JSON;
/// format 9).
pub const PREDICTION_LOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("prediction_locks");

/// redb's page cache, bytes: the coordinator's memory stays flat as the store grows.
pub const CACHE_BYTES: usize = 64 << 20;
/// Queued jobs as (rank, job id): the costliest first (longest processing time first keeps a
/// sweep's makespan short), then by id. See [`crate::records::JobRecord::rank`].
pub const QUEUE: TableDefinition<(u64, u64), ()> = TableDefinition::new("queue_by_cost");
/// Format 1's queue: job ids, lowest first.
pub const QUEUE_V1: TableDefinition<u64, ()> = TableDefinition::new("queue");
/// (job id, step / 32) → the points of those 32 steps, each with the attempt that wrote it, in
/// step order ([`crate::curves`], [`crate::codec`]; format 8). One point per step, whatever the
/// replays.
pub const CURVE_BLOCKS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("curve_blocks");
/// Formats 1 to 7: (job id, step) → one point (protobuf before format 5); moved into blocks.
pub const CURVES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("curves");
/// (job id, step) → CheckpointRecord (JSON): a stored checkpoint, whose bytes are the file it
/// names ([`crate::files`]; format 7).
pub const CHECKPOINTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("checkpoints");
/// Checkpoint files whose records are gone, to be unlinked (format 7): listed in the commit that
/// removes the record, struck once the file is deleted.
pub const DOOMED_FILES: TableDefinition<&str, ()> = TableDefinition::new("doomed_files");
/// Format 6's checkpoint bytes: (job id, step, chunk index) → bytes (moved to files).
pub const CHECKPOINT_CHUNKS: TableDefinition<(u64, u64, u32), &[u8]> = TableDefinition::new("checkpoint_chunks");
/// dataset sha256 → DatasetRecord (JSON).
pub const DATASETS: TableDefinition<&str, &[u8]> = TableDefinition::new("datasets");
/// dataset name → sha256.
pub const DATASET_NAMES: TableDefinition<&str, &str> = TableDefinition::new("dataset_names");
/// (sha256, file 0 = train / 1 = val, chunk index) → bytes.
pub const DATASET_CHUNKS: TableDefinition<(&str, u8, u32), &[u8]> = TableDefinition::new("dataset_chunks");
/// worker id → WorkerRecord (JSON).
pub const WORKERS: TableDefinition<&str, &[u8]> = TableDefinition::new("workers");
/// (worker id, job id) → attempt: the leases each worker holds.
pub const LEASES: TableDefinition<(&str, u64), u32> = TableDefinition::new("leases");
/// Format 6's staging of checkpoint uploads: (job id, attempt, step, chunk index) → bytes (uploads
/// are staged as files since format 7).
pub const CHECKPOINT_STAGING: TableDefinition<(u64, u32, u64, u32), &[u8]> = TableDefinition::new("checkpoint_staging");
/// (upload id, file, chunk index) → bytes of a dataset upload not yet complete.
pub const DATASET_STAGING: TableDefinition<(u64, u8, u32), &[u8]> = TableDefinition::new("dataset_staging");

/// Blobs are split into chunks of this size.
pub const CHUNK: usize = 1 << 20;

/// Read access over either kind of transaction, so one query serves reads and writes alike.
pub trait Reader {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static>: ReadableTable<K, V>
    where
        Self: 'a;
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>>;
}

impl Reader for ReadTransaction {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static> = redb::ReadOnlyTable<K, V>;
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>> {
        Ok(self.open_table(def)?)
    }
}

impl Reader for WriteTransaction {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static> = redb::Table<'a, K, V>;
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>> {
        Ok(self.open_table(def)?)
    }
}

pub fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(v)?)
}

pub fn from_json<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(b)?)
}

/// Allocates the next id of a counter in META.
pub fn next_id(txn: &WriteTransaction, counter: &str) -> Result<u64> {
    let mut meta = txn.open_table(META)?;
    let id = meta.get(counter)?.map_or(1, |v| v.value());
    meta.insert(counter, id + 1)?;
    Ok(id)
}

/// Whether every table of this format exists.
pub fn all_exist(r: &ReadTransaction) -> Result<bool> {
    use redb::TableHandle;
    let names: std::collections::HashSet<String> = r.list_tables()?.map(|h| h.name().to_string()).collect();
    let all = [
        META.name(),
        SWEEPS.name(),
        SWEEP_NAMES.name(),
        JOBS.name(),
        JOB_CONFIGS.name(),
        OPEN_JOBS.name(),
        QUEUE.name(),
        CURVE_BLOCKS.name(),
        CHECKPOINTS.name(),
        DOOMED_FILES.name(),
        DATASETS.name(),
        DATASET_NAMES.name(),
        DATASET_CHUNKS.name(),
        WORKERS.name(),
        LEASES.name(),
        DATASET_STAGING.name(),
        JOB_COUNTS.name(),
        SWEEP_COUNTS.name(),
        BRANCHES.name(),
        LOGS.name(),
        SWEEP_LOG_BYTES.name(),
        PREDICTION_LOCKS.name(),
    ];
    Ok(all.iter().all(|t| names.contains(*t)))
}

/// Opens every table of this format, creating the missing ones (the same tables as
/// [`all_exist`] checks).
pub fn create_all(txn: &WriteTransaction) -> Result<()> {
    txn.open_table(META)?;
    txn.open_table(SWEEPS)?;
    txn.open_table(SWEEP_NAMES)?;
    txn.open_table(JOBS)?;
    txn.open_table(JOB_CONFIGS)?;
    txn.open_table(OPEN_JOBS)?;
    txn.open_table(QUEUE)?;
    txn.open_table(CURVE_BLOCKS)?;
    txn.open_table(CHECKPOINTS)?;
    txn.open_table(DOOMED_FILES)?;
    txn.open_table(DATASETS)?;
    txn.open_table(DATASET_NAMES)?;
    txn.open_table(DATASET_CHUNKS)?;
    txn.open_table(WORKERS)?;
    txn.open_table(LEASES)?;
    txn.open_table(DATASET_STAGING)?;
    txn.open_table(JOB_COUNTS)?;
    txn.open_table(SWEEP_COUNTS)?;
    txn.open_table(BRANCHES)?;
    txn.open_table(LOGS)?;
    txn.open_table(SWEEP_LOG_BYTES)?;
    txn.open_table(PREDICTION_LOCKS)?;
    Ok(())
}
