//! Live fits cost nothing while nobody watches: a sweep's points alone start no fit; asking for
//! its fits (GetFits, the page, `ladder fit`) starts one for all who ask at once, and the sweep is
//! then refitted as it changes.
use std::time::Duration;

use ladder_coordinator::{Store, serve_with_metrics};
use ladder_proto::pb;
use ladder_testkit::procs::metric;
use ladder_testkit::server::*;
use tokio_util::sync::CancellationToken;

async fn fits_computed(addr: std::net::SocketAddr) -> f64 {
    let a = addr.to_string();
    let m = tokio::task::spawn_blocking(move || ladder_testkit::procs::scrape(&a)).await.expect("scrape").expect("200");
    metric(&m, "ladder_fits_total")
}

#[tokio::test(flavor = "multi_thread")]
async fn fits_run_only_while_watched_and_requests_at_once_share_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (addr, maddr) = (listener.local_addr().expect("addr"), metrics.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let cfg = ladder_coordinator::Config { max_wait: Duration::from_secs(2), ..Default::default() };
    let s = stop.clone();
    tokio::spawn(async move {
        serve_with_metrics(Store::in_memory().expect("store"), cfg, listener, Some(metrics), s).await
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    let (mut users, mut workers) = (
        pb::ladder_client::LadderClient::new(channel.clone()),
        pb::worker_service_client::WorkerServiceClient::new(channel),
    );
    register_dataset(&mut users).await;
    let spec = SPEC.replace("steps = 5", "steps = 400");
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut workers, "w").await;
    let a = acquire(&mut workers, &w).await.expect("a job");
    let mut step = 0;
    let mut report_some = |n: u64| {
        let evs: Vec<_> = (step + 1..=step + n).map(|k| point(k, 3.0 / (k as f64).sqrt())).collect();
        step += n;
        report(&w, &a, evs)
    };
    // Points for longer than a refit period: nobody watches, nothing is fitted.
    for _ in 0..6 {
        workers.report_events(report_some(20)).await.expect("report");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(fits_computed(maddr).await, 0.0, "a fit while nobody watched");
    // Eight requests at once: one fit serves them all.
    let asks = (0..8).map(|_| {
        let mut u = users.clone();
        tokio::spawn(async move { u.get_fits(pb::GetFitsRequest { sweep: "fence".into() }).await })
    });
    for a in asks {
        let f = a.await.expect("task").expect("fits").into_inner();
        assert_eq!(f.points, 120, "the fit saw every point, summarised");
    }
    assert_eq!(fits_computed(maddr).await, 1.0, "one fit for eight requests");
    // Watched now: new points are refitted within a period or two.
    workers.report_events(report_some(20)).await.expect("report");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while fits_computed(maddr).await < 2.0 {
        assert!(tokio::time::Instant::now() < deadline, "no refit of a watched sweep");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let f = users.get_fits(pb::GetFitsRequest { sweep: "fence".into() }).await.expect("fits").into_inner();
    assert_eq!(f.points, 140);
    stop.cancel();
}
