//! The redb store: every table is defined here. All writes go through one writer thread that
//! commits them in batches (group commit); a write is acknowledged only after its batch is durable.
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::error::{CoordError, Result};

/// Bumped whenever a table's key or value layout changes; [`migrate`] carries older stores forward.
pub const FORMAT_VERSION: u64 = 2;

/// "format_version", "next_sweep_id", "next_job_id".
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// sweep id → SweepRecord (JSON).
pub const SWEEPS: TableDefinition<u64, &[u8]> = TableDefinition::new("sweeps");
/// sweep name → sweep id.
pub const SWEEP_NAMES: TableDefinition<&str, u64> = TableDefinition::new("sweep_names");
/// job id → JobRecord (JSON).
pub const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// Queued jobs as (rank, job id): the costliest first (longest processing time first keeps a
/// sweep's makespan short), then by id. See [`crate::jobs::rank`].
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

/// Blobs are split into chunks of this size.
pub const CHUNK: usize = 1 << 20;

type AfterCommit = Box<dyn FnOnce(Result<()>) + Send>;
type Op = Box<dyn FnOnce(&WriteTransaction) -> AfterCommit + Send>;

/// Most operations folded into one commit.
const MAX_BATCH: usize = 1024;

#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    ops: mpsc::Sender<Op>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)?;
        Self::start(db)
    }

    /// A store held in memory, for tests.
    pub fn in_memory() -> Result<Self> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::start(db)
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
            txn.open_table(QUEUE)?;
            txn.open_table(CURVES)?;
            txn.open_table(CHECKPOINTS)?;
            txn.open_table(CHECKPOINT_CHUNKS)?;
            txn.open_table(DATASETS)?;
            txn.open_table(DATASET_NAMES)?;
            txn.open_table(DATASET_CHUNKS)?;
            txn.open_table(WORKERS)?;
        }
        txn.commit()?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<Op>(4 * MAX_BATCH);
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("ladder-store-writer".into())
            .spawn(move || writer(writer_db, rx))
            .map_err(CoordError::storage)?;
        Ok(Self { db, ops: tx })
    }

    pub fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    /// Runs `f` in the next batch; resolves once the batch is durable. `f` must check before it
    /// writes: an error it returns is delivered as is, and its batch still commits.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |txn| {
            let out = f(txn);
            Box::new(move |committed: Result<()>| {
                let _ = tx.send(committed.and(out));
            })
        });
        self.ops.send(op).await.map_err(|_| CoordError::Shutdown)?;
        rx.await.map_err(|_| CoordError::Shutdown)?
    }
}

fn writer(db: Arc<Database>, mut rx: mpsc::Receiver<Op>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string();
                for op in batch {
                    drop(op); // their senders drop: callers see Shutdown
                }
                tracing::error!("store: cannot begin a write: {msg}");
                continue;
            }
        };
        let after: Vec<AfterCommit> = batch.into_iter().map(|op| op(&txn)).collect();
        let committed = txn.commit().map_err(CoordError::from);
        let shared = committed.map_err(|e| e.to_string());
        for cb in after {
            cb(shared.clone().map_err(CoordError::Storage));
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
                queue.insert((crate::jobs::rank(&job), id), ())?;
            }
        }
        drop((queue, jobs));
        txn.delete_table(QUEUE_V1)?;
        tracing::info!("store migrated from format {from} to {FORMAT_VERSION}");
    }
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
