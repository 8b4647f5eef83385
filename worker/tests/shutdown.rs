//! The worker daemon's shutdown: every task it started stops on one signal. A worker whose
//! coordinator no longer knows it (its store was replaced) stops with a clear error, its metrics
//! server included, instead of hanging with the metrics port still open.
use std::time::{Duration, Instant};

use ladder_coordinator::{Config, Store, serve};
use ladder_proto::pb;
use ladder_testkit::server::start;
use ladder_worker::WorkerConfig;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_serving_metrics_stops_instead_of_hanging() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut first = start(Store::in_memory().expect("store"), Duration::from_millis(600)).await;
    let addr = first.addr();
    let mut cfg = WorkerConfig::new(
        format!("http://{addr}"),
        "w".into(),
        vec!["cpu".into()],
        tmp.path().join("w"),
        tmp.path().join("no-trainer-needed"),
    );
    cfg.acquire_wait = Duration::from_millis(100);
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
    let metrics_addr = metrics.local_addr().expect("metrics addr");
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(ladder_worker::run_with_metrics(cfg, Some(metrics), shutdown.clone()));
    let t0 = Instant::now();
    loop {
        let ws = first.users.list_workers(pb::ListWorkersRequest {}).await.expect("workers").into_inner();
        if !ws.workers.is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "the worker never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(std::net::TcpStream::connect(metrics_addr).is_ok(), "metrics are served");

    // The same address, an empty store: this coordinator never heard of the worker.
    first.shutdown().await;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                assert!(t0.elapsed() < Duration::from_secs(30), "rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let stop = CancellationToken::new();
    let cfg = Config { lease_ttl: Duration::from_millis(600), max_wait: Duration::from_secs(2), ..Config::default() };
    let second = tokio::spawn(serve(Store::in_memory().expect("store"), cfg, listener, stop.clone()));

    let ended = tokio::time::timeout(Duration::from_secs(30), worker).await;
    let result = ended.expect("the lost worker stopped within 30 s (not waiting on its metrics server)").expect("join");
    let e = result.expect_err("a lost worker ends with an error").to_string();
    assert!(e.contains("no longer knows worker"), "{e}");
    assert!(!shutdown.is_cancelled(), "nobody asked it to stop: it stopped itself");
    assert!(std::net::TcpStream::connect(metrics_addr).is_err(), "its metrics port is closed");
    stop.cancel();
    let _ = second.await;
}
