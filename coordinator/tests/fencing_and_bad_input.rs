//! Fencing and bad input, each against a real server: invalid points (and points past a job's last
//! step) refused one by one (and never stored), checkpoints refused ahead of their curve, holes refused at the finish, a newer
//! attempt's points replacing a dead one's, worker ids bound to their credential, a lost Acquire
//! reply released without a restart, leases surviving the coordinator's own downtime, curves and
//! sweep lists paged, smaller re-uploads leaving no stale chunks, names that would escape a folder
//! refused.

use std::time::Duration;

use ladder_coordinator::tables::{JOBS, from_json};
use ladder_coordinator::{Config, Store};
use ladder_proto::pb;
use ladder_testkit::server::*;
use tonic::Code;

async fn sweep(s: &mut Server, name: &str, seeds: &str, steps: u64) -> pb::Sweep {
    let spec = SPEC
        .replace("name = \"fence\"", &format!("name = \"{name}\""))
        .replace("seeds = [0, 1]", seeds)
        .replace("steps = 5", &format!("steps = {steps}"));
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() })
        .await
        .expect("submit")
        .into_inner()
        .sweep
        .expect("sweep")
}

fn started(step: u64) -> pb::AttemptEvent {
    pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Started(pb::AttemptStarted { resumed_from_step: step })) }
}

/// A fresh in-memory server with `ttl`, one sweep `name` of one job of `steps` steps, and worker
/// "w" holding that job's lease.
async fn one_job_leased(ttl: Duration, name: &str, steps: u64) -> (Server, String, pb::Assignment) {
    let mut s = start(Store::in_memory().expect("store"), ttl).await;
    register_dataset(&mut s.users).await;
    sweep(&mut s, name, "seeds = [0]", steps).await;
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    (s, w, a)
}

async fn job(s: &mut Server, id: u64) -> pb::Job {
    s.users.get_job(pb::GetJobRequest { job_id: id }).await.expect("job").into_inner()
}

async fn curve(s: &mut Server, id: u64) -> Vec<pb::MetricPoint> {
    let mut out = Vec::new();
    let mut after_step = 0;
    loop {
        let page = s
            .users
            .get_curve(pb::GetCurveRequest { job_id: id, after_step, limit: 0 })
            .await
            .expect("curve")
            .into_inner();
        out.extend(page.points);
        if page.next_after_step == 0 {
            return out;
        }
        after_step = page.next_after_step;
    }
}

async fn upload(
    s: &mut Server,
    worker: &str,
    a: &pb::Assignment,
    step: u64,
    blob: &[u8],
) -> Result<pb::CheckpointInfo, tonic::Status> {
    upload_checkpoint(&mut s.workers, worker, a, step, blob).await
}

#[tokio::test]
async fn a_non_finite_point_is_refused_alone_and_every_record_stays_readable() {
    let (mut s, w, a) = one_job_leased(Duration::from_secs(30), "nan", 5).await;
    let mut bad = point(2, 1.0);
    if let Some(pb::attempt_event::Kind::Metrics(m)) = bad.kind.as_mut() {
        m.tokens_per_s = f64::NAN;
    }
    let events = vec![point(1, 2.0), bad, point(3, 0.5)];
    let r = s.workers.report_events(report(&w, &a, events)).await.expect("report").into_inner();
    assert_eq!((r.stored, r.refused), (2, 1), "only the bad point is refused");
    let steps: Vec<u64> = curve(&mut s, a.job_id).await.iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![1, 3]);
    // The job, its listing and the queue all still read.
    assert_eq!(job(&mut s, a.job_id).await.step, 3);
    s.users.list_jobs(pb::ListJobsRequest { sweep: "nan".into() }).await.expect("listing reads");
    s.shutdown().await;
}

#[tokio::test]
async fn a_point_past_the_jobs_last_step_is_refused_alone() {
    let (mut s, w, a) = one_job_leased(Duration::from_secs(30), "past", 5).await;
    let events = vec![point(4, 2.0), point(5, 1.5), point(6, 1.0), point(1 << 40, 0.5)];
    let r = s.workers.report_events(report(&w, &a, events)).await.expect("report").into_inner();
    assert_eq!((r.stored, r.refused), (2, 2), "steps 6 and 2^40 are past the last step, 5");
    let steps: Vec<u64> = curve(&mut s, a.job_id).await.iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![4, 5]);
    assert_eq!(job(&mut s, a.job_id).await.step, 5, "progress ignores the refused points");
    s.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_record_stops_neither_the_reaper_nor_acquire() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    {
        let store = Store::open(&path).expect("store");
        let mut s = start(store, Duration::from_millis(300)).await;
        register_dataset(&mut s.users).await;
        sweep(&mut s, "two", "seeds = [0, 1]", 5).await;
        s.shutdown().await;
    }
    // Corrupt the first job's record on disk, as a bug or an old build might have left it.
    {
        let db = redb::Database::create(&path).expect("db");
        let txn = db.begin_write().expect("txn");
        txn.open_table(JOBS).expect("jobs").insert(1, b"{\"not\": \"a job\"}".as_slice()).expect("insert");
        txn.commit().expect("commit");
    }
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let ttl = Duration::from_secs(30);
    let mut s = start_clocked(Store::open(&path).expect("reopen"), ttl, &clock).await;
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("the readable job is still leased");
    assert_eq!(a.job_id, 2);
    clock.advance(ttl + Duration::from_millis(1)); // the lease expires; the reaper runs over the bad record
    let users = s.users.clone();
    eventually("the reaper to requeue job 2", || {
        let mut users = users.clone();
        async move {
            let j = users.get_job(pb::GetJobRequest { job_id: 2 }).await.expect("job").into_inner();
            j.state == pb::JobState::Queued as i32
        }
    })
    .await;
    let e = s.users.get_job(pb::GetJobRequest { job_id: 1 }).await.expect_err("unreadable");
    assert!(e.message().contains("does not read"), "{}", e.message());
    s.shutdown().await;
}

#[tokio::test]
async fn checkpoints_ahead_of_the_curve_and_finishes_with_holes_are_refused() {
    let (mut s, w, a) = one_job_leased(Duration::from_secs(30), "holes", 5).await;
    s.workers.report_events(report(&w, &a, vec![point(1, 2.0), point(2, 1.9)])).await.expect("report");
    let e = upload(&mut s, &w, &a, 4, b"checkpoint bytes").await.expect_err("ahead of the curve");
    assert_eq!(e.code(), Code::Aborted, "{}", e.message());
    assert!(e.message().contains("whole up to step 2"), "{}", e.message());
    upload(&mut s, &w, &a, 2, b"checkpoint at 2").await.expect("at the curve's end");
    // Step 3 lost: the finish at 5 is refused and the job goes back to the queue.
    let evs = vec![point(4, 1.7), point(5, 1.6), finished(5)];
    s.workers.report_events(report(&w, &a, evs)).await.expect("report");
    let j = job(&mut s, a.job_id).await;
    assert_eq!(pb::JobState::try_from(j.state), Ok(pb::JobState::Queued));
    assert!(j.failure_message.contains("step 3 is missing"), "{}", j.failure_message);
    // The next attempt resumes at 2 and fills the curve; its points replace what the dead one left.
    let b = acquire(&mut s.workers, &w).await.expect("again");
    assert_eq!((b.attempt, b.resume_step), (2, 2));
    let evs = vec![started(2), point(3, 1.5), point(4, 1.4), point(5, 1.3), finished(5)];
    s.workers.report_events(report(&w, &b, evs)).await.expect("report");
    let j = job(&mut s, b.job_id).await;
    assert_eq!(pb::JobState::try_from(j.state), Ok(pb::JobState::Succeeded));
    let c = curve(&mut s, b.job_id).await;
    let by_step: Vec<(u64, u32, f64)> = c.iter().map(|p| (p.step, p.attempt, p.train_loss)).collect();
    assert_eq!(by_step, vec![(1, 1, 2.0), (2, 1, 1.9), (3, 2, 1.5), (4, 2, 1.4), (5, 2, 1.3)]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_worker_cannot_act_as_another_worker() {
    let cfg = Config {
        lease_ttl: Duration::from_secs(30),
        tokens: vec![
            (ladder_coordinator::auth::Role::Admin, "admin-token-0123456789".into()),
            (ladder_coordinator::auth::Role::Worker, "worker-one-0123456789".into()),
            (ladder_coordinator::auth::Role::Worker, "worker-two-0123456789".into()),
        ],
        ..Config::default()
    };
    let s = start_with(Store::in_memory().expect("store"), cfg).await;
    let addr = s.addr();
    let client = |token: &'static str| {
        let ch = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
        let bearer = ladder_proto::auth::Bearer::new(Some(token)).expect("token");
        ladder_proto::pb::worker_service_client::WorkerServiceClient::with_interceptor(ch, bearer)
    };
    let (mut one, mut two) = (client("worker-one-0123456789"), client("worker-two-0123456789"));
    let reg = pb::RegisterRequest { name: "one".into(), slots: vec!["cpu".into()], ..Default::default() };
    let id_one = one.register(reg).await.expect("register").into_inner().worker_id;
    let hb = pb::HeartbeatRequest { worker_id: id_one.clone(), running: vec![] };
    one.heartbeat(hb.clone()).await.expect("its own id");
    let e = two.heartbeat(hb).await.expect_err("another's id");
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    let acq = pb::AcquireRequest { worker_id: id_one, slot: "cpu".into(), wait_ms: 1, ..Default::default() };
    assert_eq!(two.acquire(acq).await.expect_err("refused").code(), Code::PermissionDenied);
    s.shutdown().await;
}

#[tokio::test]
async fn a_lease_whose_acquire_reply_was_lost_goes_back_without_a_restart() {
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let ttl = Duration::from_secs(30);
    let mut s = start_clocked(Store::in_memory().expect("store"), ttl, &clock).await;
    register_dataset(&mut s.users).await;
    sweep(&mut s, "lost", "seeds = [0]", 5).await;
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    // Leased, but the reply is 'lost': the worker never learnt of it, its heartbeats list nothing.
    s.workers.heartbeat(pb::HeartbeatRequest { worker_id: w.clone(), running: vec![] }).await.expect("beat");
    let j = job(&mut s, a.job_id).await;
    assert_eq!(pb::JobState::try_from(j.state), Ok(pb::JobState::Running), "too soon to call it lost");
    clock.advance(ttl / 2 + Duration::from_millis(1));
    s.workers.heartbeat(pb::HeartbeatRequest { worker_id: w.clone(), running: vec![] }).await.expect("beat");
    let j = job(&mut s, a.job_id).await;
    assert_eq!(pb::JobState::try_from(j.state), Ok(pb::JobState::Queued), "back in the queue");
    assert_eq!(j.failure, pb::FailureKind::Unspecified as i32, "no failure recorded, no restart charged");
    s.shutdown().await;
}

#[tokio::test]
async fn leases_survive_the_coordinators_downtime() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let ttl = Duration::from_secs(30);
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let (w, a) = {
        let mut s = start_clocked(Store::open(&path).expect("store"), ttl, &clock).await;
        register_dataset(&mut s.users).await;
        sweep(&mut s, "down", "seeds = [0]", 5).await;
        let w = register_worker(&mut s.workers, "w").await;
        let a = acquire(&mut s.workers, &w).await.expect("a job");
        s.shutdown().await;
        (w, a)
    };
    // Down for three lease lengths: every lease has expired by the clock.
    clock.advance(3 * ttl);
    let cfg = Config { startup_grace: 3 * ttl, ..clocked(ttl, &clock) };
    let mut s = start_with(Store::open(&path).expect("reopen"), cfg).await;
    clock.advance(ttl / 2);
    tokio::time::sleep(Duration::from_millis(100)).await; // the reaper (every 10 ms) has looked
    let running = vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt }];
    let hb = s.workers.heartbeat(pb::HeartbeatRequest { worker_id: w.clone(), running }).await.expect("beat");
    assert!(hb.into_inner().stop.is_empty(), "the attempt is still current");
    let j = job(&mut s, a.job_id).await;
    assert_eq!((pb::JobState::try_from(j.state), j.attempt), (Ok(pb::JobState::Running), 1), "no restart charged");
    s.shutdown().await;
}

#[tokio::test]
async fn a_200k_point_curve_comes_back_whole_page_by_page() {
    let (mut s, w, a) = one_job_leased(Duration::from_secs(60), "long", 200_000).await;
    for start in (1..=200_000u64).step_by(5_000) {
        let evs: Vec<_> = (start..start + 5_000).map(|k| point(k, 1.0 + 1.0 / k as f64)).collect();
        s.workers.report_events(report(&w, &a, evs)).await.expect("report");
    }
    let page = s
        .users
        .get_curve(pb::GetCurveRequest { job_id: a.job_id, after_step: 0, limit: 0 })
        .await
        .expect("page")
        .into_inner();
    assert_eq!((page.points.len(), page.next_after_step), (10_000, 10_000), "one page at a time");
    let all = curve(&mut s, a.job_id).await;
    assert_eq!(all.len(), 200_000);
    assert!(all.windows(2).all(|w| w[1].step == w[0].step + 1));
    s.shutdown().await;
}

#[tokio::test]
async fn a_smaller_reupload_leaves_no_stale_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let mut s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    sweep(&mut s, "reup", "seeds = [0]", 5).await;
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    s.workers.report_events(report(&w, &a, vec![point(1, 2.0), point(2, 1.9)])).await.expect("report");
    let big = vec![7u8; 3 * (1 << 20) + 5];
    upload(&mut s, &w, &a, 2, &big).await.expect("big");
    let small = vec![9u8; 1 << 19];
    upload(&mut s, &w, &a, 2, &small).await.expect("small");
    assert_eq!(download_checkpoint(&mut s.workers, a.job_id, 2).await.expect("download"), small);
    // The checkpoint's bytes are one file beside the store: the small upload's; the big one's
    // file is deleted once the replacement is durable.
    let dir = tmp.path().join("checkpoints").join(a.job_id.to_string());
    let sizes = || {
        std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").metadata().expect("meta").len())
            .collect::<Vec<_>>()
    };
    eventually("the replaced file deleted", || async { sizes() == vec![small.len() as u64] }).await;
    s.shutdown().await;
}

#[tokio::test]
async fn names_that_would_escape_a_folder_and_bad_devices_are_refused_or_normalised() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("name = \"fence\"", "name = \"..\"");
    let e = s
        .users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("a sweep name is"), "{}", e.message());
    // A device with spaces still matches its slot.
    let spec = SPEC.replace("name = \"fence\"", "name = \"spaced\"").replace("device = \"cpu\"", "device = \" cpu \"");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    assert!(acquire(&mut s.workers, &w).await.is_some(), "the cpu slot takes a \" cpu \" job");
    let _ = from_json::<serde_json::Value>; // the store's JSON helper stays public for tests
    s.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_and_serving_goes_on() {
    use tokio::io::AsyncReadExt;
    let cfg = Config { first_bytes: Duration::from_millis(300), ..Config::default() };
    let mut s = start_with(Store::in_memory().expect("store"), cfg).await;
    let mut silent = tokio::net::TcpStream::connect(s.addr()).await.expect("connect");
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the silent connection was closed: {closed:?}");
    s.users.list_datasets(pb::ListDatasetsRequest {}).await.expect("others are served");
    s.shutdown().await;
}

#[tokio::test]
async fn a_claim_finds_a_fitting_job_pages_deep_in_the_queue() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    // 600 GPU jobs ahead of one CPU job: a CPU slot must still get it (the queue is read in pages).
    let seeds: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let gpu = SPEC
        .replace("device = \"cpu\"", "device = \"cuda\"")
        .replace("name = \"fence\"", "name = \"deep\"")
        .replace("seeds = [0, 1]", &format!("seeds = [{}]", seeds.join(", ")));
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: gpu, ..Default::default() }).await.expect("submit");
    s.users
        .submit_sweep(pb::SubmitSweepRequest {
            spec_toml: SPEC.replace("seeds = [0, 1]", "seeds = [7]"),
            ..Default::default()
        })
        .await
        .expect("submit");
    let id = register_worker(&mut s.workers, "cpu-box").await;
    let got = acquire(&mut s.workers, &id).await.expect("the CPU job behind 600 GPU jobs");
    let jobs = s.users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    assert_eq!(got.job_id, jobs[0].id);
    s.shutdown().await;
}
