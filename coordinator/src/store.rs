//! The redb store: every table is defined here. All writes go through one writer thread that
//! commits them in batches (group commit); a write is acknowledged only after its batch is durable.
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{CoordError, Result};

/// Bumped whenever a table's key or value layout changes; [`migrate`] carries older stores forward.
pub const FORMAT_VERSION: u64 = 4;

/// "format_version", "next_sweep_id", "next_job_id".
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// sweep id → SweepRecord (JSON).
pub const SWEEPS: TableDefinition<u64, &[u8]> = TableDefinition::new("sweeps");
/// sweep name → sweep id.
pub const SWEEP_NAMES: TableDefinition<&str, u64> = TableDefinition::new("sweep_names");
/// job id → JobRecord (JSON).
pub const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// job id → its trainer config (TOML): cold, written once at submission, apart from the hot
/// record that every report and heartbeat rewrites (format 4).
pub const JOB_CONFIGS: TableDefinition<u64, &str> = TableDefinition::new("job_configs");
/// (sweep id, job id) of every job not yet final: a sweep is done when its range is empty
/// (format 4).
pub const OPEN_JOBS: TableDefinition<(u64, u64), ()> = TableDefinition::new("open_jobs");

/// redb's page cache, bytes: the coordinator's memory stays flat as the store grows.
pub const CACHE_BYTES: usize = 256 << 20;
/// Queued jobs as (rank, job id): the costliest first (longest processing time first keeps a
/// sweep's makespan short), then by id. See [`crate::queue::rank`].
pub const QUEUE: TableDefinition<(u64, u64), ()> = TableDefinition::new("queue_by_cost");
/// Format 1's queue: job ids, lowest first.
const QUEUE_V1: TableDefinition<u64, ()> = TableDefinition::new("queue");
/// (job id, step) → pb::MetricPoint (protobuf). One point per step, whatever the replays.
pub const CURVES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("curves");
/// (job id, step) → CheckpointRecord (JSON), written once every chunk is in.
pub const CHECKPOINTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("checkpoints");
/// (job id, step, chunk index) → bytes.
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
/// (job id, attempt, step, chunk index) → bytes of a checkpoint upload not yet complete.
pub const CHECKPOINT_STAGING: TableDefinition<(u64, u32, u64, u32), &[u8]> = TableDefinition::new("checkpoint_staging");
/// (upload id, file, chunk index) → bytes of a dataset upload not yet complete.
pub const DATASET_STAGING: TableDefinition<(u64, u8, u32), &[u8]> = TableDefinition::new("dataset_staging");

/// Blobs are split into chunks of this size.
pub const CHUNK: usize = 1 << 20;

/// A write operation. It may run twice: in its batch, and again alone if anything in the batch
/// failed, so every operation commits all of its writes or none of them.
type Op = Box<dyn Fn(&WriteTransaction) -> Result<Box<dyn std::any::Any + Send>> + Send>;
type Reply = oneshot::Sender<Result<Box<dyn std::any::Any + Send>>>;

enum Msg {
    Op(Op, Reply),
    /// Ends the writer once the operations queued before it are done.
    Stop,
}

/// Most operations folded into one commit.
const MAX_BATCH: usize = 1024;

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

/// The store; clones share one database and one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    ops: mpsc::Sender<Msg>,
    /// Cancelled when a commit failed: the store can no longer promise durability.
    failed: CancellationToken,
    failure: Arc<std::sync::Mutex<Option<String>>>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path)?;
        Self::start(db)
    }

    /// A store on any redb backend (tests inject storage faults this way).
    pub fn with_backend(backend: impl redb::StorageBackend) -> Result<Self> {
        let db = Database::builder().create_with_backend(backend)?;
        Self::start(db)
    }

    /// A store held in memory, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::with_backend(redb::backends::InMemoryBackend::new())
    }

    fn start(db: Database) -> Result<Self> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get("format_version")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format_version", FORMAT_VERSION)?;
                }
                Some(v) if v == FORMAT_VERSION => {}
                Some(v) if v < FORMAT_VERSION => {
                    drop(meta);
                    migrate(&txn, v)?;
                    txn.open_table(META)?.insert("format_version", FORMAT_VERSION)?;
                }
                Some(v) => {
                    return Err(CoordError::Storage(format!(
                        "store format version {v}; this build reads versions up to {FORMAT_VERSION}"
                    )));
                }
            }
            txn.open_table(SWEEPS)?;
            txn.open_table(SWEEP_NAMES)?;
            txn.open_table(JOBS)?;
            txn.open_table(JOB_CONFIGS)?;
            txn.open_table(OPEN_JOBS)?;
            txn.open_table(QUEUE)?;
            txn.open_table(CURVES)?;
            txn.open_table(CHECKPOINTS)?;
            txn.open_table(CHECKPOINT_CHUNKS)?;
            txn.open_table(DATASETS)?;
            txn.open_table(DATASET_NAMES)?;
            txn.open_table(DATASET_CHUNKS)?;
            txn.open_table(WORKERS)?;
            txn.open_table(LEASES)?;
            txn.open_table(CHECKPOINT_STAGING)?;
            txn.open_table(DATASET_STAGING)?;
        }
        txn.commit()?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let failed = CancellationToken::new();
        let failure = Arc::new(std::sync::Mutex::new(None));
        let (writer_db, f, why) = (db.clone(), failed.clone(), failure.clone());
        let handle = std::thread::Builder::new()
            .name("ladder-store-writer".into())
            .spawn(move || writer(&writer_db, rx, &f, &why))
            .map_err(CoordError::storage)?;
        Ok(Self { db, ops: tx, failed, failure, writer: Arc::new(std::sync::Mutex::new(Some(handle))) })
    }

    pub fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// Cancelled once a commit failed (disk full, I/O error): nothing more can be made durable.
    pub fn failed(&self) -> CancellationToken {
        self.failed.clone()
    }

    /// Why the store failed, once it has.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|g| g.clone())
    }

    /// Runs `f` in the next batch; resolves once its writes are durable. An error (or a panic)
    /// from `f` discards all of its writes and is delivered to the caller; the batch's other
    /// operations still commit. `f` may be called twice (see [`Op`]).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T> + Send + 'static,
    {
        if self.failed.is_cancelled() {
            return Err(CoordError::Storage(self.failure().unwrap_or_else(|| "the store failed".into())));
        }
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |txn| f(txn).map(|v| Box::new(v) as Box<dyn std::any::Any + Send>));
        self.ops.send(Msg::Op(op, tx)).await.map_err(|_| CoordError::Shutdown)?;
        let out = rx.await.map_err(|_| CoordError::Shutdown)??;
        out.downcast::<T>().map(|b| *b).map_err(|_| CoordError::storage("write returned an unexpected type"))
    }

    /// Stops the writer once every operation queued before this call is done, and joins it.
    /// Later writes, from any clone, fail with `Shutdown`.
    pub async fn close(&self) {
        let handle = self.writer.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let _ = self.ops.send(Msg::Stop).await;
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

/// Runs `op` once, turning a panic into an error.
fn run_op(op: &Op, txn: &WriteTransaction) -> Result<Box<dyn std::any::Any + Send>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(txn))) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            tracing::error!("store: an operation panicked: {what}");
            Err(CoordError::Storage(format!("internal error (an operation panicked: {what})")))
        }
    }
}

/// Commits a transaction; a failure marks the store failed.
fn commit(txn: WriteTransaction, failed: &CancellationToken, why: &std::sync::Mutex<Option<String>>) -> Result<()> {
    txn.commit().map_err(|e| {
        let msg = format!("commit failed: {e}");
        tracing::error!("store: {msg}; the coordinator stops serving");
        if let Ok(mut g) = why.lock() {
            g.get_or_insert(msg.clone());
        }
        failed.cancel();
        CoordError::Storage(msg)
    })
}

fn writer(
    db: &Database,
    mut rx: mpsc::Receiver<Msg>,
    failed: &CancellationToken,
    why: &std::sync::Mutex<Option<String>>,
) {
    let fail_all = |batch: Vec<(Op, Reply)>, msg: &str| {
        for (_, reply) in batch {
            let _ = reply.send(Err(CoordError::Storage(msg.to_string())));
        }
    };
    let mut stopping = false;
    while !stopping {
        let Some(first) = rx.blocking_recv() else { return };
        let mut batch = Vec::new();
        match first {
            Msg::Op(op, reply) => batch.push((op, reply)),
            Msg::Stop => return,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Op(op, reply)) => batch.push((op, reply)),
                Ok(Msg::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if failed.is_cancelled() {
            let why = why.lock().ok().and_then(|g| g.clone()).unwrap_or_default();
            fail_all(batch, &format!("the store failed earlier ({why})"));
            continue;
        }
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                fail_all(batch, &format!("cannot begin a write: {e}"));
                continue;
            }
        };
        let results: Vec<_> = batch.iter().map(|(op, _)| run_op(op, &txn)).collect();
        if results.iter().all(Result::is_ok) {
            let committed = commit(txn, failed, why);
            for ((_, reply), r) in batch.into_iter().zip(results) {
                let _ = reply.send(committed.as_ref().map_err(|e| CoordError::Storage(e.to_string())).and(r));
            }
            continue;
        }
        // Something failed: nothing of this batch is kept; each op runs again on its own, so the
        // good ones commit and a failing one's writes are discarded.
        let _ = txn.abort();
        for (op, reply) in batch {
            let outcome = match db.begin_write() {
                Err(e) => Err(CoordError::Storage(format!("cannot begin a write: {e}"))),
                Ok(txn) => match run_op(&op, &txn) {
                    Ok(v) => commit(txn, failed, why).map(|()| v),
                    Err(e) => {
                        let _ = txn.abort();
                        Err(e)
                    }
                },
            };
            let _ = reply.send(outcome);
        }
    }
}

/// Carries a store of format `from` forward to [`FORMAT_VERSION`], in the same transaction.
fn migrate(txn: &WriteTransaction, from: u64) -> Result<()> {
    if from < 2 {
        // 1 → 2: the queue is ordered by cost instead of by id.
        let ids: Vec<u64> = {
            let old = txn.open_table(QUEUE_V1)?;
            old.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?
        };
        let mut queue = txn.open_table(QUEUE)?;
        let jobs = txn.open_table(JOBS)?;
        for id in ids {
            if let Some(v) = jobs.get(id)? {
                let job: crate::records::JobRecord = from_json(v.value())?;
                queue.insert((crate::queue::rank(&job), id), ())?;
            }
        }
        drop((queue, jobs));
        txn.delete_table(QUEUE_V1)?;
    }
    if from < 3 {
        // 2 → 3: an index of the leases each worker holds.
        let held: Vec<crate::records::JobRecord> = {
            let jobs = txn.open_table(JOBS)?;
            let mut out = Vec::new();
            for row in jobs.iter()? {
                let (_, v) = row?;
                if let Ok(j) = from_json::<crate::records::JobRecord>(v.value())
                    && j.state == crate::records::JobState::Running
                {
                    out.push(j);
                }
            }
            out
        };
        for j in held {
            crate::queue::index_lease(txn, &j)?;
        }
    }
    if from < 4 {
        // 3 → 4: configs leave the job records for their own table.
        let jobs: Vec<crate::records::JobRecord> = {
            let t = txn.open_table(JOBS)?;
            let mut out = Vec::new();
            for r in t.iter()? {
                let (_, v) = r?;
                out.push(from_json(v.value())?);
            }
            out
        };
        for j in jobs {
            j.save_config(txn)?;
            if !j.state.is_final() {
                txn.open_table(OPEN_JOBS)?.insert((j.sweep_id, j.id), ())?;
            }
            j.save(txn)?;
        }
    }
    tracing::info!("store migrated from format {from} to {FORMAT_VERSION}");
    Ok(())
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
