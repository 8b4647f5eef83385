//! The store's writer: every operation commits all its writes or none, a panicking operation is
//! answered as an error while the others of its batch commit, a failed commit marks the store
//! failed (and answers every later write so), a closed store refuses writes, and storage faults
//! (EIO, ENOSPC on writes and syncs) never acknowledge what was not made durable.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ladder_coordinator::CoordError;
use ladder_coordinator::store::Store;
use ladder_coordinator::tables::META;
use redb::{ReadableDatabase, StorageBackend};

fn get(store: &Store, key: &str) -> Option<u64> {
    let r = store.read().expect("read");
    let t = r.open_table(META).expect("meta");
    t.get(key).expect("get").map(|v| v.value())
}

#[tokio::test]
async fn a_failed_operation_keeps_none_of_its_writes_and_the_batch_commits() {
    let store = Store::in_memory().expect("store");
    // Many writes queued at once land in one batch; one of them fails (a storage error) after
    // writing.
    let mut handles = Vec::new();
    for i in 0..20u64 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |txn| {
                txn.open_table(META)?.insert(format!("k{i}").as_str(), i)?;
                if i == 7 {
                    return Err(CoordError::Storage("failed after writing".into()));
                }
                Ok(i)
            })
            .await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.expect("joined");
        if i == 7 {
            assert!(matches!(r, Err(CoordError::Storage(_))), "{r:?}");
        } else {
            assert_eq!(r.expect("committed"), i as u64);
        }
    }
    assert_eq!(get(&store, "k7"), None, "the failed operation's write is gone");
    for i in (0..20).filter(|&i| i != 7) {
        assert_eq!(get(&store, &format!("k{i}")), Some(i));
    }
}

#[tokio::test]
async fn a_refusal_is_an_answer_and_costs_its_batch_no_commit() {
    let store = Store::in_memory().expect("store");
    let (commits, retried) =
        (store.stats().commits.load(Ordering::Relaxed), store.stats().retried_batches.load(Ordering::Relaxed));
    // 200 operations at once, half of them refusing (before writing, as every operation does).
    let mut handles = Vec::new();
    for i in 0..200u64 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |txn| {
                if i % 2 == 1 {
                    return Err(CoordError::Stale(format!("attempt {i} is not current")));
                }
                txn.open_table(META)?.insert(format!("k{i}").as_str(), i)?;
                Ok(i)
            })
            .await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.expect("joined");
        if i % 2 == 1 {
            assert!(matches!(r, Err(CoordError::Stale(_))), "{r:?}");
        } else {
            assert_eq!(r.expect("committed"), i as u64);
        }
    }
    let commits = store.stats().commits.load(Ordering::Relaxed) - commits;
    let retried = store.stats().retried_batches.load(Ordering::Relaxed) - retried;
    // One commit per batch (a few batches as the writer drains), none per refusal.
    assert_eq!(retried, 0, "no batch was rerun one operation at a time");
    assert!(commits < 20, "{commits} commits for 200 operations");
    // A run of refusals alone writes nothing, so it commits nothing.
    let before = store.stats().commits.load(Ordering::Relaxed);
    for i in 0..50u64 {
        let r = store
            .write(move |_| -> ladder_coordinator::error::Result<()> { Err(CoordError::Stale(format!("stale {i}"))) })
            .await;
        assert!(matches!(r, Err(CoordError::Stale(_))), "{r:?}");
    }
    assert_eq!(store.stats().commits.load(Ordering::Relaxed), before, "refusals alone cost no fsync");
    assert_eq!(get(&store, "k198"), Some(198));
}

#[tokio::test]
async fn a_panicking_operation_is_an_error_and_the_writer_lives_on() {
    let store = Store::in_memory().expect("store");
    let r = store
        .write(|txn| -> ladder_coordinator::error::Result<()> {
            txn.open_table(META)?.insert("half", 1)?;
            panic!("a bug in an operation");
        })
        .await;
    let e = r.expect_err("a panic is an error");
    assert!(e.to_string().contains("a bug in an operation"), "{e}");
    assert_eq!(get(&store, "half"), None);
    store.write(|txn| Ok(txn.open_table(META)?.insert("after", 2).map(|_| ())?)).await.expect("still writing");
    assert_eq!(get(&store, "after"), Some(2));
}

#[tokio::test]
async fn a_closed_store_refuses_writes_and_its_writer_is_joined() {
    let store = Store::in_memory().expect("store");
    store.write(|txn| Ok(txn.open_table(META)?.insert("x", 1).map(|_| ())?)).await.expect("write");
    store.close().await;
    let e = store.write(|_| Ok(())).await.expect_err("closed");
    assert!(matches!(e, CoordError::Shutdown), "{e:?}");
}

/// A file backend that fails writes or syncs on demand (EIO or ENOSPC).
#[derive(Debug)]
struct Faulty {
    inner: redb::backends::FileBackend,
    fail_writes: Arc<AtomicBool>,
    fail_syncs: Arc<AtomicBool>,
    errno: Arc<AtomicU64>,
}

impl Faulty {
    fn err(&self) -> std::io::Error {
        let code = self.errno.load(Ordering::SeqCst) as i32;
        std::io::Error::from_raw_os_error(code)
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(self.err());
        }
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(self.err());
        }
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(self.err());
        }
        self.inner.write(offset, data)
    }
}

#[tokio::test]
async fn storage_faults_never_acknowledge_what_is_not_durable() {
    for (what, errno) in [("EIO on sync", libc_eio()), ("ENOSPC on write", libc_enospc())] {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("ladder.redb");
        let (fail_writes, fail_syncs) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).expect("open");
        let backend = Faulty {
            inner: redb::backends::FileBackend::new(file).expect("backend"),
            fail_writes: fail_writes.clone(),
            fail_syncs: fail_syncs.clone(),
            errno: Arc::new(AtomicU64::new(errno as u64)),
        };
        let store = Store::with_backend(backend).expect("store");
        let mut acknowledged = Vec::new();
        for i in 0..30u64 {
            if i == 15 {
                if what.contains("sync") {
                    fail_syncs.store(true, Ordering::SeqCst);
                } else {
                    fail_writes.store(true, Ordering::SeqCst);
                }
            }
            let key = format!("k{i}");
            let r = store.write(move |txn| Ok(txn.open_table(META)?.insert(key.as_str(), i).map(|_| ())?)).await;
            if r.is_ok() {
                acknowledged.push(i);
            }
        }
        assert!(store.failed().is_cancelled(), "{what}: the store knows it failed");
        assert!(store.failure().is_some_and(|f| f.contains("commit failed")), "{what}: {:?}", store.failure());
        assert!(acknowledged.len() >= 15, "{what}: writes before the fault were acknowledged");
        assert!(!acknowledged.contains(&29), "{what}: nothing after the fault is acknowledged");
        store.close().await;
        drop(store);
        // Reopened: everything acknowledged is there.
        let db = redb::Database::create(&path).expect("reopen repairs");
        let r = db.begin_read().expect("read");
        let t = r.open_table(META).expect("meta");
        for i in &acknowledged {
            assert_eq!(t.get(format!("k{i}").as_str()).expect("get").map(|v| v.value()), Some(*i), "{what}: k{i} lost");
        }
    }
}

fn libc_eio() -> i32 {
    5
}

fn libc_enospc() -> i32 {
    28
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(mb: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?.keep();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mounting a tmpfs needs root: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn on_a_full_disk_the_ballast_is_released_and_the_store_commits() {
    let test = "on_a_full_disk_the_ballast_is_released_and_the_store_commits";
    let Some(fs) = ladder_testkit::gate(test, Tmpfs::mount(160)) else {
        return;
    };
    let dir = fs.0.join("coord");
    {
        let store = ladder_coordinator::open_store(&dir).expect("create");
        store.write(|txn| Ok(txn.open_table(META)?.insert("kept", 7).map(|_| ())?)).await.expect("write");
        store.close().await;
    }
    let ballast = dir.join(ladder_coordinator::server::BALLAST);
    assert_eq!(std::fs::metadata(&ballast).expect("ballast").len(), ladder_coordinator::server::BALLAST_BYTES);
    // Something else fills the disk to the last byte.
    let mut junk = std::fs::File::create(fs.0.join("junk")).expect("junk");
    let block = vec![7u8; 1 << 20];
    while std::io::Write::write_all(&mut junk, &block).is_ok() {}
    while std::io::Write::write_all(&mut junk, &block[..4096]).is_ok() {}
    drop(junk);
    let store = ladder_coordinator::open_store(&dir).expect("opens");
    assert!(!ballast.exists(), "the ballast is released");
    assert_eq!(get(&store, "kept"), Some(7));
    // Room to commit: a checkpoint's worth of pages.
    let blob = vec![1u8; 8 << 20];
    store
        .write(move |txn| {
            Ok(txn
                .open_table(ladder_coordinator::tables::CHECKPOINT_CHUNKS)?
                .insert((1, 1, 0), blob.as_slice())
                .map(|_| ())?)
        })
        .await
        .expect("commits on the freed room");
    assert!(store.failed().is_cancelled().then_some(()).is_none(), "the store did not fail");
    store.close().await;
}
