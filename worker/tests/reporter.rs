//! Issue 19, finding 5 at the worker: a batch of events the coordinator refuses for good is never
//! flushed as stored. The attempt stops there, so no checkpoint is uploaded past the hole.
use std::sync::Arc;
use std::time::Duration;

use ladder_coordinator::Store;
use ladder_core::attempt::AttemptEvent;
use ladder_core::events::MetricPoint;
use ladder_proto::tls::ClientTls;
use ladder_testkit::server::*;
use ladder_worker::env::WorkerStats;
use ladder_worker::report;
use ladder_worker::rpc::Rpc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_batch_refused_for_good_fails_the_flush_and_stops_the_attempt() {
    let s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    let rpc = Rpc::connect(&format!("http://{}", s.addr()), None, &ClientTls::default()).expect("connect");
    let tmp = tempfile::tempdir().expect("tmp");
    let stop = CancellationToken::new();
    // A worker id the coordinator never registered: every report is refused (NotFound), and no
    // retry changes that.
    let (outbox, reporter) = report::start(
        rpc,
        ("w-unknown".into(), 1, 1),
        stop.clone(),
        Arc::new(WorkerStats::default()),
        tmp.path().join("spill"),
    );
    outbox.send(AttemptEvent::Point(MetricPoint {
        step: 1,
        tokens: 64,
        flops: 1e6,
        flops_exact: 1e6,
        train_loss: 2.0,
        val_loss: None,
        lr: 0.01,
        grad_norm: 1.0,
        gns_small_sq: 0.0,
        gns_big_sq: 0.0,
        b_small: 0,
        b_big: 0,
        b_simple: None,
        tokens_per_s: 100.0,
    }));
    let stored = tokio::time::timeout(Duration::from_secs(10), outbox.flush()).await.expect("the flush answers");
    assert!(!stored, "a dropped batch is not stored");
    assert!(stop.is_cancelled(), "the attempt is stopped");
    tokio::time::timeout(Duration::from_secs(5), reporter).await.expect("the reporter ends").expect("joined");
    s.shutdown().await;
}
