//! Uploads, restarts and the writer, each against a real server: a resubmission costs the writer
//! nothing, a hole before a checkpoint refuses it, unknown worker ids are refused, a stalled
//! download holds no read transaction, staged uploads never outlive their attempt or process,
//! and a store that would fill its disk refuses the upload instead.

use std::time::Duration;

use ladder_coordinator::tables::DATASET_STAGING;
use ladder_coordinator::{Config, Store};
use ladder_proto::pb;
use ladder_testkit::server::*;
use redb::ReadableTableMetadata;
use tokio_stream::StreamExt;
use tonic::Code;

async fn upload(
    s: &mut Server,
    w: &str,
    a: &pb::Assignment,
    step: u64,
    blob: &[u8],
) -> Result<pb::CheckpointInfo, tonic::Status> {
    upload_checkpoint(&mut s.workers, w, a, step, blob).await
}

/// Dataset chunks staged in the store, and files under the store folder's `sub`.
fn staged(store: &Store, dir: &std::path::Path, sub: &str) -> (u64, usize) {
    let r = store.read().expect("read");
    let d = r.open_table(DATASET_STAGING).expect("staging").len().expect("len");
    let files = walk(&dir.join(sub));
    (d, files)
}

/// Files under `dir`, in its subfolders too.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}

#[tokio::test]
async fn resubmitting_a_sweep_commits_nothing() {
    let store = Store::in_memory().expect("store");
    let mut s = start(store.clone(), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    let submit = |spec: String| pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() };
    let first = s.users.submit_sweep(submit(SPEC.into())).await.expect("submit").into_inner();
    assert!(first.created);
    let before = store.stats().commits.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..5 {
        let again = s.users.submit_sweep(submit(SPEC.into())).await.expect("resubmit").into_inner();
        assert!(!again.created, "the same spec again is the same sweep");
    }
    assert_eq!(
        store.stats().commits.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "a resubmission is planned and compared off the writer"
    );
    // A different spec under the same name is refused, and that refusal writes nothing either.
    let other = SPEC.replace("steps = 5", "steps = 6");
    let e = s.users.submit_sweep(submit(other)).await.expect_err("a name taken by another spec");
    assert_eq!(e.code(), Code::AlreadyExists, "{e}");
    assert_eq!(store.stats().commits.load(std::sync::atomic::Ordering::SeqCst), before);
    s.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_past_a_hole_in_the_curve_is_refused_and_one_before_it_is_kept() {
    let (mut s, w) =
        Server::with_sweep(Duration::from_secs(30), Some(&SPEC.replace("seeds = [0, 1]", "seeds = [0]"))).await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    let r = s
        .workers
        .report_events(report(&w, &a, vec![point(1, 3.0), point(2, 2.5), point(4, 2.0)]))
        .await
        .expect("report");
    assert_eq!(r.into_inner().stored, 3);
    let e = upload(&mut s, &w, &a, 4, b"weights at 4").await.expect_err("step 3 is missing");
    assert_eq!(e.code(), Code::Aborted, "{e}");
    assert!(e.message().contains("whole up to step 2"), "{}", e.message());
    let ok = upload(&mut s, &w, &a, 2, b"weights at 2").await.expect("step 2 is behind a whole curve");
    assert_eq!(ok.step, 2);
    // The hole filled, the later checkpoint is taken.
    s.workers.report_events(report(&w, &a, vec![point(3, 2.2)])).await.expect("report");
    assert_eq!(upload(&mut s, &w, &a, 4, b"weights at 4").await.expect("whole now").step, 4);
    s.shutdown().await;
}

#[tokio::test]
async fn a_worker_id_never_registered_is_refused_everywhere() {
    let (mut s, _w) = Server::with_sweep(Duration::from_secs(30), None).await;
    let ghost = "w-never-registered".to_string();
    let e = s
        .workers
        .heartbeat(pb::HeartbeatRequest { worker_id: ghost.clone(), running: vec![] })
        .await
        .expect_err("an unknown id");
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert!(e.message().contains("is registered"), "{}", e.message());
    let req = pb::AcquireRequest { worker_id: ghost.clone(), slot: "cpu".into(), wait_ms: 50, ..Default::default() };
    assert_eq!(s.workers.acquire(req).await.expect_err("unknown").code(), Code::NotFound);
    let fake = pb::Assignment { job_id: 1, attempt: 1, ..Default::default() };
    let e = s.workers.report_events(report(&ghost, &fake, vec![point(1, 1.0)])).await.expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound, "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_stalled_download_holds_no_read_transaction() {
    let store = Store::in_memory().expect("store");
    let mut s = start(store.clone(), Duration::from_secs(30)).await;
    // 16 MiB of train tokens: far more than the stream's flow-control window holds.
    let train = ladder_testkit::data::cycle_tokens(8 << 20, 50);
    let mut msgs = ladder_testkit::data::upload("big", Vec::new(), ladder_testkit::data::cycle_tokens(1000, 50), 64);
    if let Some(pb::dataset_upload::Part::Header(h)) = msgs[0].part.as_mut() {
        h.train_bytes = train.len() as u64;
    }
    // In messages of 4 MiB, under the message limit.
    let parts = train.chunks(4 << 20).map(|c| pb::DatasetUpload {
        part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: "train".into(), data: c.to_vec() })),
    });
    msgs.splice(1..2, parts);
    let ds = s.users.register_dataset(tokio_stream::iter(msgs)).await.expect("register").into_inner();
    let mut stream = s
        .workers
        .fetch_dataset(pb::FetchDatasetRequest { sha256: ds.sha256.clone(), file: "train".into() })
        .await
        .expect("fetch")
        .into_inner();
    let first = stream.next().await.expect("a chunk").expect("ok");
    assert!(!first.data.is_empty());
    // The client reads no more: the server's stream waits on the window, between chunks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.open_reads(), 0, "a stalled stream pins no pages");
    let mut total = first.data.len();
    while let Some(c) = stream.next().await {
        total += c.expect("chunk").data.len();
    }
    assert_eq!(total, 16 << 20, "the download completes after the stall");
    s.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_cut_off_mid_upload_leaves_nothing_staged_once_its_attempt_ends() {
    let store = Store::in_memory().expect("store");
    let mut s = start(store.clone(), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    s.workers.report_events(report(&w, &a, vec![point(1, 3.0), point(2, 2.0)])).await.expect("report");
    // The header and half the data, then the stream ends early (the worker died).
    let blob = vec![7u8; 900_000];
    let msgs: Vec<_> = checkpoint_msgs(&w, &a, 2, &blob).into_iter().take(3).collect();
    let e = s.workers.upload_checkpoint(tokio_stream::iter(msgs)).await.expect_err("short upload");
    assert!(matches!(e.code(), Code::InvalidArgument | Code::DataLoss | Code::Aborted), "{e}");
    let root = store.files().root().to_path_buf();
    assert_eq!((walk(&root.join("staging")), walk(&root.join("checkpoints"))), (0, 0), "nothing of it is kept");
    // The attempt fails: nothing it staged survives its end.
    let failed = pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Failed(pb::AttemptFailed {
            message: "killed".into(),
            ..Default::default()
        })),
    };
    s.workers.report_events(report(&w, &a, vec![failed])).await.expect("report");
    assert_eq!(staged(&store, &root, "staging"), (0, 0), "nothing staged survives its end");
    s.shutdown().await;
}

#[tokio::test]
async fn a_restart_drops_the_uploads_the_previous_process_left_staged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    Store::open(&path).expect("create").close().await;
    {
        // What a coordinator killed mid-upload leaves: staged chunks of a dataset, a half-written
        // checkpoint upload, and a checkpoint file placed whose record never committed.
        let db = redb::Database::open(&path).expect("open");
        let w = db.begin_write().expect("write");
        w.open_table(DATASET_STAGING).expect("t").insert((9, 0, 0), [1u8; 1000].as_slice()).expect("insert");
        w.commit().expect("commit");
        std::fs::write(tmp.path().join("staging/1.partial"), [2u8; 1000]).expect("staged upload");
        std::fs::create_dir_all(tmp.path().join("checkpoints/1")).expect("mkdir");
        std::fs::write(tmp.path().join("checkpoints/1/000000000005-a1-0.tar"), [3u8; 1000]).expect("orphan");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!((staged(&store, tmp.path(), "staging"), walk(&tmp.path().join("checkpoints"))), ((1, 1), 1));
    let s = start(store.clone(), Duration::from_secs(30)).await;
    eventually("the staging cleared", || async { staged(&store, tmp.path(), "staging") == (0, 0) }).await;
    assert_eq!(walk(&tmp.path().join("checkpoints")), 0, "a file no record names is deleted");
    s.shutdown().await;
}

#[tokio::test]
async fn uploads_that_would_fill_the_disk_are_refused_with_resource_exhausted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = Config {
        lease_ttl: Duration::from_secs(30),
        max_wait: Duration::from_secs(2),
        data_dir: Some(tmp.path().to_path_buf()),
        // More free space than any disk has: every upload is refused.
        min_free_bytes: u64::MAX / 4,
        ..Config::default()
    };
    let mut s = start_with(Store::in_memory().expect("store"), cfg).await;
    let msgs = ladder_testkit::data::upload(
        "tiny",
        ladder_testkit::data::cycle_tokens(4000, 50),
        ladder_testkit::data::cycle_tokens(1000, 50),
        64,
    );
    let e = s.users.register_dataset(tokio_stream::iter(msgs)).await.expect_err("no room");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("--min-free-bytes"), "{}", e.message());
    let datasets = s.users.list_datasets(pb::ListDatasetsRequest {}).await.expect("list").into_inner();
    assert!(datasets.datasets.is_empty(), "nothing half-registered");
    s.shutdown().await;
}

#[tokio::test]
async fn the_counts_of_a_sweep_survive_restarts_with_leases_held() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let counts = |s: &Server| {
        let mut users = s.users.clone();
        async move {
            let sw = users.get_sweep(pb::GetSweepRequest { sweep: "fence".into() }).await.expect("sweep").into_inner();
            (sw.jobs_queued, sw.jobs_running)
        }
    };
    let mut s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
        .await
        .expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    acquire(&mut s.workers, &w).await.expect("a job");
    assert_eq!(counts(&s).await, (1, 1));
    s.shutdown().await;
    for restart in 1..=3 {
        // Each start renews the lease found: the job is saved, and must not be counted again.
        let s = start(Store::open(&path).expect("reopen"), Duration::from_secs(30)).await;
        assert_eq!(counts(&s).await, (1, 1), "after restart {restart}");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn heartbeats_renew_leases_without_waiting_on_the_writer() {
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let store = Store::in_memory().expect("store");
    let mut s = start_clocked(store.clone(), Duration::from_secs(10), &clock).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    let running = vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt }];
    let before = store.stats().commits.load(std::sync::atomic::Ordering::SeqCst);
    // Forty heartbeats over 40 s of a 10 s lease: each renews it; a few reach the store.
    for _ in 0..40 {
        clock.advance(Duration::from_secs(1));
        let r = s.workers.heartbeat(pb::HeartbeatRequest { worker_id: w.clone(), running: running.clone() }).await;
        assert!(r.expect("heartbeat").into_inner().stop.is_empty(), "the attempt is current");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let commits = store.stats().commits.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(commits <= 14, "{commits} commits for 40 heartbeats: at most one per third of a lease");
    let job = s.users.get_job(pb::GetJobRequest { job_id: a.job_id }).await.expect("job").into_inner();
    assert_eq!(job.state, pb::JobState::Running as i32, "renewed in memory, the lease never ran out");
    // Silence past the lease: it expires.
    clock.advance(Duration::from_secs(11));
    eventually("the lease to expire", || {
        let mut users = s.users.clone();
        async move {
            let j = users.get_job(pb::GetJobRequest { job_id: a.job_id }).await.expect("job").into_inner();
            j.state == pb::JobState::Queued as i32
        }
    })
    .await;
    s.shutdown().await;
}
