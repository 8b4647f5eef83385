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

/// A sweep that has ended is fitted once more with the hold-out of its largest size, each row
/// beside persistence and the two-point line: the page's hold-out table. While it runs, the live
/// fits carry none.
#[tokio::test(flavor = "multi_thread")]
async fn an_ended_sweeps_fits_hold_out_its_largest_size_beside_the_naive_guesses() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("shapes = [[1, 16]]", "shapes = [[1, 16], [1, 24], [1, 32], [2, 32], [2, 48]]")
        .replace("steps = 5", "steps = 20");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let mut jobs = 0;
    while let Some(a) = acquire(&mut s.workers, &w).await {
        // L = 1 + 60/d_model^0.8 plus a pattern standing in for seed scatter, at the last step.
        let m = a.config.as_ref().and_then(|c| c.model.as_ref()).expect("a model");
        let size = (m.n_layer * m.d_model * m.d_model) as f64;
        let loss = 1.0 + 60.0 / size.powf(0.4) * (1.0 + [0.01, -0.012, 0.006, -0.004, 0.0][jobs % 5]);
        let mut evs: Vec<pb::AttemptEvent> = (1..=20).map(|k| point(k, loss * (1.0 + 2.0 / k as f64))).collect();
        if let Some(pb::attempt_event::Kind::Metrics(p)) = evs.last_mut().and_then(|e| e.kind.as_mut()) {
            p.val_loss = Some(loss);
        }
        evs.push(finished(20));
        s.workers.report_events(report(&w, &a, evs)).await.expect("report");
        jobs += 1;
    }
    assert_eq!(jobs, 5);
    let mut rows = Vec::new();
    for _ in 0..100 {
        let f = s.users.get_fits(pb::GetFitsRequest { sweep: "fence".into() }).await.expect("fits").into_inner();
        let v: serde_json::Value = serde_json::from_str(&f.report_json).unwrap_or_default();
        rows = v["holdout"].as_array().cloned().unwrap_or_default();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let l_n = rows.iter().find(|h| h["law"] == "L(N)").unwrap_or_else(|| panic!("no L(N) hold-out in {rows:?}"));
    let (actual, persistence) = (l_n["actual"].as_f64(), l_n["baselines"]["persistence"].as_f64());
    // Persistence is the second-largest size's loss, above the largest's.
    assert!(matches!((actual, persistence), (Some(a), Some(p)) if p > a), "{l_n}");
    assert!(l_n["baselines"]["two_point"].as_f64().is_some(), "{l_n}");
    s.shutdown().await;
}
