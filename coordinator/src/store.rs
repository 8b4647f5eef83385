//! The store: one redb database, read by anyone, written by one writer thread that commits in
//! batches (group commit); a write is acknowledged only once its batch is durable; and the
//! checkpoint files beside it ([`crate::files`]). The tables are defined in [`crate::tables`];
//! an older file is carried forward by [`crate::migrate`] when it is opened.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{CoordError, Result};
use crate::files::Files;
use crate::tables::{CACHE_BYTES, FORMAT_VERSION, META, Reader, create_all};

/// A write operation. It may run twice: in its batch, and again alone if another operation of
/// the batch failed, so every operation commits all of its writes or none of them.
///
/// An operation refuses before it writes: when it returns a refusal
/// ([`CoordError::is_refusal`]: a stale attempt, bad input, a missing record) it has written
/// nothing, so its batch commits as if it had not run. Only a storage error (or a panic) aborts
/// the batch, whose other operations then run again one by one.
type Op = Box<dyn Fn(&WriteTransaction) -> Result<Box<dyn std::any::Any + Send>> + Send>;
type Reply = oneshot::Sender<Result<Box<dyn std::any::Any + Send>>>;

enum Msg {
    Op(Op, Reply),
    /// Ends the writer once the operations queued before it are done.
    Stop,
}

/// Most operations folded into one commit.
const MAX_BATCH: usize = 1024;

/// What the writer has done, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed (each one fsync).
    pub commits: AtomicU64,
    /// Operations run.
    pub ops: AtomicU64,
    /// Batches aborted by a storage error and run again one operation at a time.
    pub retried_batches: AtomicU64,
}

/// A read transaction; the store counts the ones open (a stalled reader that holds one keeps
/// the pages it sees from being reused).
pub struct Read {
    txn: ReadTransaction,
    open: Arc<AtomicU64>,
}

impl std::ops::Deref for Read {
    type Target = ReadTransaction;
    fn deref(&self) -> &ReadTransaction {
        &self.txn
    }
}

impl Drop for Read {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Reader for Read {
    type Table<'a, K: redb::Key + 'static, V: redb::Value + 'static> = redb::ReadOnlyTable<K, V>;
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: redb::TableDefinition<K, V>,
    ) -> Result<Self::Table<'_, K, V>> {
        Ok(self.txn.open_table(def)?)
    }
}

/// The database, swapped for a reopened one when a commit failed (None while it is reopened).
type DbSlot = Arc<std::sync::RwLock<Option<Arc<Database>>>>;

/// Where a store on disk recovers from a failed commit: its file.
#[derive(Debug, Clone)]
struct Reopen {
    path: std::path::PathBuf,
    /// Set while the database is being reopened: writes are refused meanwhile.
    why: Arc<std::sync::Mutex<Option<String>>>,
    /// Set when the store closes: a reopening in progress gives up.
    closing: Arc<std::sync::atomic::AtomicBool>,
}

/// The store; clones share one database, its files and one writer thread.
#[derive(Clone)]
pub struct Store {
    db: DbSlot,
    reopen: Option<Reopen>,
    files: Arc<Files>,
    ops: mpsc::Sender<Msg>,
    /// Cancelled when a commit failed: the store can no longer promise durability.
    failed: CancellationToken,
    failure: Arc<std::sync::Mutex<Option<String>>>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    stats: Arc<WriterStats>,
    reads: Arc<AtomicU64>,
}

impl Store {
    /// The store in file `path`, its checkpoint files in the same folder.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let reopen = Reopen { path: path.to_path_buf(), why: Arc::default(), closing: Arc::default() };
        Self::start(db, Files::at(dir)?, Some(reopen))
    }

    /// A store on any redb backend (tests inject storage faults this way), its checkpoint files
    /// in a temporary folder.
    pub fn with_backend(backend: impl redb::StorageBackend) -> Result<Self> {
        let db = Database::builder().create_with_backend(backend)?;
        Self::start(db, Files::temporary()?, None)
    }

    /// A store held in memory, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::with_backend(redb::backends::InMemoryBackend::new())
    }

    fn start(mut db: Database, files: Files, reopen: Option<Reopen>) -> Result<Self> {
        if prepare(&db, &files)? {
            // The bytes that left for files or blocks leave free pages behind: give them back.
            db.compact().map_err(|e| CoordError::Storage(format!("compacting the migrated store: {e}")))?;
        }
        let db: DbSlot = Arc::new(std::sync::RwLock::new(Some(Arc::new(db))));
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let failed = CancellationToken::new();
        let failure = Arc::new(std::sync::Mutex::new(None));
        let stats = Arc::new(WriterStats::default());
        let reads: Arc<AtomicU64> = Arc::default();
        let w = Writer {
            db: db.clone(),
            reopen: reopen.clone(),
            reads: reads.clone(),
            failed: failed.clone(),
            why: failure.clone(),
            stats: stats.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("ladder-store-writer".into())
            .spawn(move || w.run(rx))
            .map_err(CoordError::storage)?;
        Ok(Self {
            db,
            reopen,
            files: Arc::new(files),
            ops: tx,
            failed,
            failure,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
            stats,
            reads,
        })
    }

    /// The database now; refused while it is reopened after a failed commit.
    fn db(&self) -> Result<Arc<Database>> {
        let g = self.db.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.clone()
            .ok_or_else(|| CoordError::Exhausted(self.recovering().unwrap_or_else(|| "the store is reopening".into())))
    }

    /// Why writes are refused while the store recovers from a failed commit (a full disk).
    pub fn recovering(&self) -> Option<String> {
        self.reopen.as_ref().and_then(|r| r.why.lock().ok().and_then(|g| g.clone()))
    }

    pub fn read(&self) -> Result<Read> {
        let txn = self.db()?.begin_read()?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(Read { txn, open: self.reads.clone() })
    }

    /// The checkpoint files beside the database.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// Read transactions open now.
    pub fn open_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// What the writer has done.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
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
    /// operations still commit. `f` may be called twice, and refuses before it writes (see
    /// [`Op`]).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T> + Send + 'static,
    {
        if self.failed.is_cancelled() {
            return Err(CoordError::Storage(self.failure().unwrap_or_else(|| "the store failed".into())));
        }
        if let Some(why) = self.recovering() {
            return Err(CoordError::Exhausted(why));
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
        if let Some(r) = &self.reopen {
            r.closing.store(true, Ordering::Release);
        }
        if let Some(h) = handle {
            let _ = self.ops.send(Msg::Stop).await;
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

/// Brings a database to this build's format: creates a new one, migrates an older one. A store
/// already at this format with every table is only read, so it opens on a full disk. Returns
/// whether checkpoint bytes or the per-step points left the database (it is then worth
/// compacting).
fn prepare(db: &Database, files: &Files) -> Result<bool> {
    if current(db)? {
        return Ok(false);
    }
    let mut moved = false;
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
                crate::migrate::migrate(&txn, v, files)?;
                moved = v < 8;
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
    Ok(moved)
}

/// Whether the database is at this build's format with every table in place.
fn current(db: &Database) -> Result<bool> {
    let r = db.begin_read()?;
    let version = match r.open_table(META) {
        Ok(t) => t.get("format_version")?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if version != Some(FORMAT_VERSION) {
        return Ok(false);
    }
    crate::tables::all_exist(&r)
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

/// The writer thread's state.
struct Writer {
    db: DbSlot,
    /// A store on disk reopens its file after a failed commit; one in memory cannot.
    reopen: Option<Reopen>,
    /// Read transactions open now: the file is reopened once none is.
    reads: Arc<AtomicU64>,
    /// Cancelled once a commit failed and the store cannot recover.
    failed: CancellationToken,
    why: Arc<std::sync::Mutex<Option<String>>>,
    stats: Arc<WriterStats>,
}

impl Writer {
    /// Commits a transaction. A failure (a full disk, an I/O error) leaves redb unusable until
    /// its file is reopened: a store on disk refuses writes until it is (see [`Self::recover`]);
    /// one in memory is failed for good.
    fn commit(&self, txn: WriteTransaction) -> Result<()> {
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        txn.commit().map_err(|e| {
            let msg = format!("commit failed: {e}");
            match &self.reopen {
                Some(r) => {
                    tracing::error!("store: {msg}; writes wait while the store reopens");
                    if let Ok(mut g) = r.why.lock() {
                        g.get_or_insert(format!(
                            "the store could not commit ({e}): writes wait until it reopens, once its disk has room"
                        ));
                    }
                }
                None => {
                    tracing::error!("store: {msg}; the coordinator stops serving");
                    if let Ok(mut g) = self.why.lock() {
                        g.get_or_insert(msg.clone());
                    }
                    self.failed.cancel();
                }
            }
            // A full disk is a wait, not a fault: the caller retries once the store has reopened.
            let full = matches!(&e, redb::CommitError::Storage(redb::StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(nix::libc::ENOSPC));
            if full && self.reopen.is_some() {
                CoordError::Exhausted(format!("{msg}: the store's disk is full; free some space (it is retried)"))
            } else {
                CoordError::Storage(msg)
            }
        })
    }

    /// After a failed commit: the database is closed and its file reopened (redb checks and
    /// repairs it), tried again every second until it opens, then writes go on.
    fn recover(&self, r: &Reopen) {
        let old = self.db.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        drop(old);
        loop {
            // A read in flight holds the file a moment longer.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while self.reads.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            match Database::builder().set_cache_size(CACHE_BYTES).create(&r.path) {
                Ok(db) => {
                    *self.db.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(db));
                    if let Ok(mut g) = r.why.lock() {
                        *g = None;
                    }
                    tracing::warn!("store: reopened {}; writes go on", r.path.display());
                    return;
                }
                Err(e) if !r.closing.load(Ordering::Acquire) => {
                    tracing::warn!("store: reopening {} failed ({e}); trying again in a second", r.path.display());
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::error!("store: closing without reopening {}: {e}", r.path.display());
                    return;
                }
            }
        }
    }

    /// The database to write to.
    fn database(&self) -> Option<Arc<Database>> {
        self.db.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn fail_all(batch: Vec<(Op, Reply)>, msg: &str) {
        for (_, reply) in batch {
            let _ = reply.send(Err(CoordError::Storage(msg.to_string())));
        }
    }

    /// Takes batches off `rx` until it closes or a Stop arrives.
    fn run(&self, mut rx: mpsc::Receiver<Msg>) {
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
            self.batch(batch);
            // A commit failed: the file is reopened before the next batch (writes are refused
            // meanwhile, so none waits here).
            if let Some(r) = &self.reopen
                && r.why.lock().is_ok_and(|g| g.is_some())
            {
                self.recover(r);
            }
        }
    }

    /// One batch in one transaction: operations that succeed or refuse commit together; a
    /// storage error aborts it, and its operations run again one by one.
    fn batch(&self, batch: Vec<(Op, Reply)>) {
        if self.failed.is_cancelled() {
            let why = self.why.lock().ok().and_then(|g| g.clone()).unwrap_or_default();
            return Self::fail_all(batch, &format!("the store failed earlier ({why})"));
        }
        let Some(db) = self.database() else { return Self::fail_all(batch, "the store is reopening") };
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => return Self::fail_all(batch, &format!("cannot begin a write: {e}")),
        };
        self.stats.ops.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let results: Vec<_> = batch.iter().map(|(op, _)| run_op(op, &txn)).collect();
        if results.iter().all(|r| r.as_ref().is_err_and(CoordError::is_refusal)) {
            // Only refusals, which write nothing: no commit, no fsync.
            let _ = txn.abort();
            for ((_, reply), r) in batch.into_iter().zip(results) {
                let _ = reply.send(r);
            }
            return;
        }
        if results.iter().all(|r| r.as_ref().err().is_none_or(CoordError::is_refusal)) {
            let committed = self.commit(txn);
            for ((_, reply), r) in batch.into_iter().zip(results) {
                let _ = reply.send(committed.as_ref().map_err(|e| CoordError::Storage(e.to_string())).and(r));
            }
            return;
        }
        // A storage error: nothing of this batch is kept; each op runs again on its own, so the
        // good ones commit and a failing one's writes are discarded.
        let _ = txn.abort();
        self.stats.retried_batches.fetch_add(1, Ordering::Relaxed);
        for (op, reply) in batch {
            let outcome = match db.begin_write() {
                Err(e) => Err(CoordError::Storage(format!("cannot begin a write: {e}"))),
                Ok(txn) => match run_op(&op, &txn) {
                    Ok(v) => self.commit(txn).map(|()| v),
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
