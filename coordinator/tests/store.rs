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
    // Many writes queued at once land in one batch; one of them fails after writing.
    let mut handles = Vec::new();
    for i in 0..20u64 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |txn| {
                txn.open_table(META)?.insert(format!("k{i}").as_str(), i)?;
                if i == 7 {
                    return Err(CoordError::NotFound("refused after writing".into()));
                }
                Ok(i)
            })
            .await
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.await.expect("joined");
        if i == 7 {
            assert!(matches!(r, Err(CoordError::NotFound(_))), "{r:?}");
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
