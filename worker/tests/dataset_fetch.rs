//! Issue 19, finding 7: slots that need one dataset at once fetch it once; none replaces the
//! folder another is using.
use std::sync::Arc;
use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::tls::ClientTls;
use ladder_testkit::server::*;
use ladder_worker::cpu::CpuPool;
use ladder_worker::env::{Env, WorkerStats};
use ladder_worker::gpu::GpuPool;
use ladder_worker::rpc::Rpc;
use ladder_worker::transfer::{ensure_dataset, fetches};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_slots_asking_for_one_dataset_fetch_it_once() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    let ds = register_dataset(&mut s.users).await;
    let rpc = Rpc::connect(&format!("http://{}", s.addr()), None, &ClientTls::default()).expect("connect");
    let (worker_id, _) = rpc.register("w", &["cpu".into()], &[0]).await.expect("register");
    let work = tempfile::tempdir().expect("tmp");
    let env = Arc::new(Env {
        worker_id,
        rpc,
        work_dir: work.path().to_path_buf(),
        trainer: "ladder-train".into(),
        stats: Arc::new(WorkerStats::default()),
        cpu: CpuPool::new(1),
        gpu: GpuPool::default(),
        acquire_wait: std::time::Duration::from_secs(5),
    });
    let stop = CancellationToken::new();
    let asks: Vec<_> = (0..4)
        .map(|_| {
            let (env, stop, sha) = (env.clone(), stop.clone(), ds.sha256.clone());
            tokio::spawn(async move { ensure_dataset(&env, &sha, &stop).await })
        })
        .collect();
    let mut dirs = Vec::new();
    for a in asks {
        dirs.push(a.await.expect("joined").expect("fetched").expect("not stopped"));
    }
    assert!(dirs.windows(2).all(|w| w[0] == w[1]), "one folder: {dirs:?}");
    assert_eq!(fetches(), 1, "one download for four slots");
    assert_eq!(std::fs::metadata(dirs[0].join("train.bin")).expect("train").len(), 8000);
    // Nothing partial is left beside it.
    let left: Vec<_> = std::fs::read_dir(work.path().join("datasets"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![ds.sha256.clone()]);
    s.shutdown().await;
}
