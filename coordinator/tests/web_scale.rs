//! The page at a size past the demo's: a sweep's curves come thinned on the server (at most
//! `max_points` each, streamed a job at a time), a page that falls behind its event stream gets a
//! `resync` instead of silently missing changes, and a job's log keeps its newest lines within
//! its caps and shows them newest first.
use std::time::Duration;

use ladder_coordinator::{Config, Listeners, Store, serve_all};
use ladder_proto::pb;
use ladder_testkit::server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Page {
    web: std::net::SocketAddr,
    server: Server,
}

/// The page and gRPC over one in-memory store, with "tiny" registered, a one-job sweep of
/// `steps` steps submitted and its job leased: (page, worker, assignment).
async fn start(steps: u64) -> (Page, String, pb::Assignment) {
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (addr, web_addr) = (grpc.local_addr().expect("addr"), web.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let cfg = Config { max_wait: Duration::from_secs(2), ..Config::default() };
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let listeners = Listeners { grpc, metrics: None, web: Some(web) };
        serve_all(Store::in_memory().expect("store"), cfg, listeners, s).await.expect("serve")
    });
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    let mut server = Server {
        users: pb::ladder_client::LadderClient::new(channel.clone()),
        workers: pb::worker_service_client::WorkerServiceClient::new(channel),
        stop,
        task,
        addr,
    };
    register_dataset(&mut server.users).await;
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace("steps = 5", &format!("steps = {steps}"));
    server.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut server.workers, "w").await;
    let a = acquire(&mut server.workers, &w).await.expect("a job");
    (Page { web: web_addr, server }, w, a)
}

/// Points `from..=to` of a falling curve, validation every 100 steps (lowest at step 15_000).
fn points(from: u64, to: u64) -> Vec<pb::AttemptEvent> {
    (from..=to)
        .map(|k| {
            let mut p = point(k, 5.0 / (k as f64).sqrt());
            if let (Some(pb::attempt_event::Kind::Metrics(m)), true) = (p.kind.as_mut(), k % 100 == 0) {
                m.val_loss = Some(2.0 + ((k as f64 - 15_000.0) / 10_000.0).powi(2));
            }
            p
        })
        .collect()
}

/// GET over HTTP/1.1; the status, the head, and the body with any chunked framing removed.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut buf)).await.expect("answers").expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, mut body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).expect("head");
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        while let Some((len, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).expect("a chunk length");
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            body = rest[n + 2..].to_string();
        }
        body = out;
    }
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    (code, head, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn curves_come_thinned_and_streamed_and_keep_their_ends_and_best() {
    let (mut p, w, a) = start(20_000).await;
    for from in (1..=20_000).step_by(500) {
        p.server.workers.report_events(report(&w, &a, points(from, from + 499))).await.expect("report");
    }
    let (code, head, body) = get(p.web, "/api/sweeps/fence/curves").await;
    assert_eq!(code, 200, "{body}");
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "streamed: {head}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let c = v["curves"][a.job_id.to_string()].as_array().expect("the job's curve");
    assert!(c.len() <= 1000 && c.len() >= 250, "{} points by default", c.len());
    assert_eq!(c.last().and_then(|p| p["step"].as_u64()), Some(20_000), "the newest point is there");
    let best = c.iter().filter_map(|p| p["val_loss"].as_f64()).fold(f64::INFINITY, f64::min);
    assert_eq!(best, 2.0, "the lowest validation loss is drawn");
    let (_, _, body) = get(p.web, "/api/sweeps/fence/curves?max_points=100").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["curves"][a.job_id.to_string()].as_array().is_some_and(|c| c.len() <= 100 && c.len() >= 50));
    let (_, _, body) = get(p.web, &format!("/api/jobs/{}?max_points=300", a.job_id)).await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let pts = v["points"].as_array().expect("points");
    assert!(pts.len() <= 300 && pts.len() >= 150, "{}", pts.len());
    assert_eq!(v["sweep"], "fence");
    p.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_falls_behind_gets_a_resync() {
    let (mut p, w, a) = start(400_000).await;
    // A page that opens the sweep's events and then reads nothing.
    let mut sock = tokio::net::TcpStream::connect(p.web).await.expect("connect");
    let req = format!("GET /api/sweeps/fence/events HTTP/1.1\r\nHost: {}\r\n\r\n", p.web);
    sock.write_all(req.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Far more than its budget and the socket's buffers of points meanwhile.
    for from in (1..=150_000).step_by(500) {
        p.server.workers.report_events(report(&w, &a, points(from, from + 499))).await.expect("report");
    }
    // It reads again: what it missed was dropped, and it is told to reload.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0u8; 1 << 16];
    while !String::from_utf8_lossy(&seen).contains("event: resync") {
        assert!(tokio::time::Instant::now() < deadline, "no resync");
        let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await.expect("events").expect("read");
        assert!(n > 0, "the stream ended");
        seen.extend_from_slice(&buf[..n]);
        if seen.len() > 64 << 20 {
            seen.drain(..seen.len() - (1 << 20));
        }
    }
    p.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_log_keeps_its_newest_lines_within_its_caps_and_shows_them_newest_first() {
    let (mut p, w, a) = start(5).await;
    let line = |i: u64| pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Log(pb::AttemptLog {
            source: "trainer".into(),
            text: format!("line {i:06} {}", "x".repeat(180)),
            at_ms: i as i64,
        })),
    };
    for from in (0..12_000u64).step_by(1000) {
        let evs = (from..from + 1000).map(line).collect();
        p.server.workers.report_events(report(&w, &a, evs)).await.expect("report");
    }
    let (code, _, body) = get(p.web, &format!("/api/jobs/{}/log", a.job_id)).await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let lines = v["lines"].as_array().expect("lines");
    let first = lines.first().and_then(|l| l["text"].as_str()).expect("a line");
    assert!(first.starts_with("line 011999"), "the newest line first: {first}");
    // At about 260 bytes a stored line, the job's 1 MiB keeps about 4,000 of the 12,000.
    let all = p.server.users.get_logs(pb::GetLogsRequest { job_id: a.job_id, after_seq: 0 }).await.expect("logs");
    let kept = all.into_inner().lines;
    // As the store keeps them: one JSON object a line.
    let stored = |l: &pb::LogLine| {
        let v = serde_json::json!({ "seq": l.seq, "attempt": l.attempt, "at_ms": l.at_ms, "source": l.source, "text": l.text });
        v.to_string().len()
    };
    let bytes: usize = kept.iter().map(stored).sum();
    assert!(kept.len() < 4_200 && kept.len() > 3_000, "{} lines kept", kept.len());
    assert!(bytes <= 1 << 20, "{bytes} bytes kept");
    assert!(kept.last().is_some_and(|l| l.text.starts_with("line 011999")), "the newest are the ones kept");
    p.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_index_pages_past_five_hundred_sweeps() {
    let (mut p, _, _) = start(5).await;
    for i in 0..520 {
        let spec =
            SPEC.replace("name = \"fence\"", &format!("name = \"s{i:03}\"")).replace("seeds = [0, 1]", "seeds = [0]");
        p.server
            .users
            .submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() })
            .await
            .expect("submit");
    }
    let (code, _, body) = get(p.web, "/api/sweeps").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let first = v["sweeps"].as_array().expect("sweeps");
    assert_eq!(first.len(), 500);
    assert_eq!(first[0]["name"], "s519", "newest first");
    let before = v["next_before"].as_u64().expect("older ones follow");
    let (_, _, body) = get(p.web, &format!("/api/sweeps?before={before}")).await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let rest: Vec<&str> = v["sweeps"].as_array().expect("sweeps").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(rest.len(), 21, "the 20 oldest and the first sweep, fence: {rest:?}");
    assert_eq!(rest.last(), Some(&"fence"));
    assert!(v["next_before"].is_null());
    p.server.shutdown().await;
}
