//! Must show 5 of the security issue: /metrics is scraped over HTTP while a sweep runs, and its
//! gauges and counters move with what happens: a lease taken, points reported, a checkpoint
//! uploaded, a lease expired.
use std::time::Duration;

use ladder_coordinator::{Store, serve_with_metrics};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// GET /metrics of the coordinator at `addr`, checked to be OpenMetrics.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let a = addr.to_string();
    let out =
        tokio::task::spawn_blocking(move || ladder_testkit::procs::scrape(&a)).await.expect("scrape").expect("200");
    assert!(out.to_ascii_lowercase().contains("content-type: application/openmetrics-text; version=1.0.0"), "{out}");
    out
}

use ladder_testkit::procs::metric as value;

const SPEC: &str = "name = \"m\"\ndataset = \"tiny\"\n[model]\nn_ctx = 16\nd_head = 8\nshapes = [[1, 16]]\n[train]\nbatch_tokens = 64\nsteps = 5\nlr = 0.01\n[resources]\nmax_restarts = 3\n";

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_as_a_sweep_runs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (addr, maddr) = (listener.local_addr().expect("addr"), metrics.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let ttl = Duration::from_secs(30);
    let cfg = ladder_testkit::server::clocked(ttl, &clock);
    let s = stop.clone();
    let store = Store::in_memory().expect("store");
    tokio::spawn(async move { serve_with_metrics(store, cfg, listener, Some(metrics), s).await });
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    let (mut users, mut workers) = (LadderClient::new(channel.clone()), WorkerServiceClient::new(channel));

    let m = scrape(maddr).await;
    assert_eq!(value(&m, "ladder_jobs{state=\"queued\"}"), 0.0);
    assert_eq!(value(&m, "ladder_points_ingested_total"), 0.0);

    ladder_testkit::server::register_dataset(&mut users).await;
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() }).await.expect("submit");
    let m = scrape(maddr).await;
    assert_eq!((value(&m, "ladder_jobs{state=\"queued\"}"), value(&m, "ladder_sweeps")), (1.0, 1.0));

    let reg = pb::RegisterRequest { name: "w".into(), slots: vec!["cpu".into()], ..Default::default() };
    let wid = workers.register(reg).await.expect("register").into_inner().worker_id;
    let acq = pb::AcquireRequest { worker_id: wid.clone(), slot: "cpu".into(), wait_ms: 500, ..Default::default() };
    let a = workers.acquire(acq).await.expect("acquire").into_inner().assignment.expect("a job");
    let m = scrape(maddr).await;
    assert_eq!(value(&m, "ladder_jobs{state=\"running\"}"), 1.0);
    assert_eq!((value(&m, "ladder_workers"), value(&m, "ladder_workers_active")), (1.0, 1.0));

    let points: Vec<pb::AttemptEvent> = (1..=3)
        .map(|step| pb::AttemptEvent {
            kind: Some(pb::attempt_event::Kind::Metrics(pb::MetricPoint {
                step,
                tokens: step * 64,
                train_loss: 3.0,
                ..Default::default()
            })),
        })
        .collect();
    let req = pb::ReportEventsRequest { worker_id: wid.clone(), job_id: a.job_id, attempt: a.attempt, events: points };
    workers.report_events(req).await.expect("report");
    let blob = vec![7u8; 3000];
    let h = pb::CheckpointHeader {
        worker_id: wid.clone(),
        job_id: a.job_id,
        attempt: a.attempt,
        step: 3,
        total_bytes: blob.len() as u64,
        sha256: hex::encode(Sha256::digest(&blob)),
    };
    let up = vec![
        pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) },
        pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(blob)) },
    ];
    workers.upload_checkpoint(tokio_stream::iter(up)).await.expect("upload");
    let m = scrape(maddr).await;
    assert_eq!(value(&m, "ladder_points_ingested_total"), 3.0);
    assert_eq!(value(&m, "ladder_checkpoint_bytes_total"), 3000.0);
    assert_eq!(value(&m, "ladder_lease_expiries_total"), 0.0);

    // No heartbeats: the lease expires and the job goes back to the queue.
    clock.advance(ttl + Duration::from_millis(1));
    let mut m = scrape(maddr).await;
    for _ in 0..500 {
        if value(&m, "ladder_lease_expiries_total") > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        m = scrape(maddr).await;
    }
    assert_eq!(value(&m, "ladder_lease_expiries_total"), 1.0);
    assert_eq!((value(&m, "ladder_jobs{state=\"queued\"}"), value(&m, "ladder_jobs{state=\"running\"}")), (1.0, 0.0));
    stop.cancel();
}
