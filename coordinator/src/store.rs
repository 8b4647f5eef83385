//! The store: one redb database, read by anyone, written by one writer thread that commits in
//! batches (group commit); a write is acknowledged only once its batch is durable. The tables
//! are defined in [`crate::tables`]; an older file is carried forward by [`crate::migrate`] when
//! it is opened.
use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{CoordError, Result};
use crate::tables::{CACHE_BYTES, FORMAT_VERSION, META, create_all};

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
                    crate::migrate::migrate(&txn, v)?;
                    txn.open_table(META)?.insert("format_version", FORMAT_VERSION)?;
                }
                Some(v) => {
                    return Err(CoordError::Storage(format!(
                        "store format version {v}; this build reads versions up to {FORMAT_VERSION}"
                    )));
                }
            }
        }
        create_all(&txn)?;
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
