//! The live page over real HTTP on 127.0.0.1:0 (issue 21): once a token is configured, every
//! page and every JSON request without one (or with a worker's) gets 401; an unknown sweep or job
//! gets a 404 page or JSON error; a sweep with no points shows each law as not fitted, with why.
use std::time::Duration;

use ladder_coordinator::auth::Role;
use ladder_coordinator::{Config, Listeners, Store, serve_all};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const ADMIN: &str = "admin-token-0123456789";
const WORKER: &str = "worker-token-0123456789";

struct Page {
    web: std::net::SocketAddr,
    grpc: std::net::SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(tokens: Vec<(Role, String)>) -> Page {
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (grpc_addr, web_addr) = (grpc.local_addr().expect("addr"), web.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    let cfg = Config { tokens, max_wait: Duration::from_secs(2), ..Config::default() };
    let listeners = Listeners { grpc, metrics: None, web: Some(web) };
    let s = stop.clone();
    let store = Store::in_memory().expect("store");
    let task = tokio::spawn(async move { serve_all(store, cfg, listeners, s).await.expect("serve") });
    Page { web: web_addr, grpc: grpc_addr, stop, task }
}

/// One HTTP/1.1 GET; returns the status code, the headers and the body.
async fn get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut buf)).await.expect("answers").expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    (code, head.to_string(), body.to_string())
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_the_page_and_its_json_refuse_requests_without_one() {
    let p = start(vec![(Role::Admin, ADMIN.into()), (Role::Worker, WORKER.into())]).await;
    let paths =
        ["/", "/sweeps/x", "/jobs/1", "/api/sweeps", "/api/sweeps/x/fits", "/api/jobs/1/log", "/api/sweeps/x/events"];
    for path in paths {
        for presented in [None, Some(bearer("wrong")), Some(bearer(WORKER))] {
            let h: Vec<(&str, &str)> = presented.iter().map(|v| ("Authorization", v.as_str())).collect();
            let (code, head, body) = get(p.web, path, &h).await;
            assert_eq!(code, 401, "{path} with {presented:?}: {head}\n{body}");
            if path.starts_with("/api/") {
                assert!(head.to_lowercase().contains("application/json") && body.contains("\"error\""), "{body}");
            } else {
                assert!(body.contains("A token is needed"), "{body}");
            }
        }
    }
    // The admin token opens them, as a header or as the cookie /login sets.
    let (code, _, body) = get(p.web, "/api/sweeps", &[("Authorization", &bearer(ADMIN))]).await;
    assert_eq!((code, body.trim()), (200, r#"{"next_before":null,"sweeps":[]}"#));
    let (code, head, _) = get(p.web, &format!("/login?token={ADMIN}&next=/sweeps/x"), &[]).await;
    assert_eq!(code, 303, "{head}");
    // The cookie is a signed, expiring session, not the token; the browser leaves the token's URL.
    let set = head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a cookie");
    assert!(set.starts_with("ladder_session=v1.admin.") && !set.contains(ADMIN), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains("Secure"), "no Secure over plain HTTP: {set}");
    assert!(head.to_lowercase().contains("location: /sweeps/x"), "{head}");
    let cookie = set.split(';').next().expect("value").to_string();
    assert_eq!(get(p.web, "/api/sweeps", &[("Cookie", &cookie)]).await.0, 200);
    // The raw token as a cookie, a forged session and an altered expiry open nothing.
    let value = cookie.strip_prefix("ladder_session=").expect("value");
    let mut parts: Vec<&str> = value.split('.').collect();
    let later = (parts[2].parse::<i64>().expect("expiry") + 1).to_string();
    parts[2] = &later;
    let altered = format!("ladder_session={}", parts.join("."));
    for bad in [
        format!("ladder_token={ADMIN}"),
        format!("ladder_session={ADMIN}"),
        altered,
        "ladder_session=v1.admin.99999999999999.00".into(),
    ] {
        assert_eq!(get(p.web, "/api/sweeps", &[("Cookie", &bad)]).await.0, 401, "{bad}");
    }
    // A bad link logs nobody in, and never sends the browser to another host.
    assert_eq!(get(p.web, "/login?token=wrong&next=/", &[]).await.0, 401);
    let (_, head, _) = get(p.web, &format!("/login?token={ADMIN}&next=//evil.example/"), &[]).await;
    assert!(head.to_lowercase().contains("location: /\r") || head.to_lowercase().ends_with("location: /"), "{head}");
    p.stop.cancel();
    p.task.await.expect("joins");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_sweeps_and_jobs_are_404_and_a_sweep_without_points_says_why_nothing_is_fitted() {
    let p = start(Vec::new()).await;
    for path in ["/sweeps/nope", "/jobs/999", "/jobs/abc", "/no/such/page"] {
        let (code, _, body) = get(p.web, path, &[]).await;
        assert_eq!(code, 404, "{path}: {body}");
        assert!(body.contains("<html") && body.contains("<h1>"), "a page: {body}");
    }
    for path in ["/api/sweeps/nope", "/api/sweeps/nope/fits", "/api/jobs/999", "/api/jobs/abc/log"] {
        let (code, _, body) = get(p.web, path, &[]).await;
        assert_eq!(code, 404, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    }
    // A submitted sweep with no points: its page opens, its jobs are listed, no law is fitted.
    let channel = Channel::from_shared(format!("http://{}", p.grpc)).expect("url").connect_lazy();
    let mut users = LadderClient::new(channel);
    ladder_testkit::server::register_dataset(&mut users).await;
    let spec_toml = ladder_testkit::server::SPEC.to_string();
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml, ..Default::default() }).await.expect("submit");
    assert_eq!(get(p.web, "/sweeps/fence", &[]).await.0, 200);
    let (code, _, body) = get(p.web, "/api/sweeps/fence", &[]).await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["jobs"].as_array().map(Vec::len), Some(2), "{body}");
    let (code, _, body) = get(p.web, "/api/sweeps/fence/fits", &[]).await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["points"], 0, "{body}");
    let why = v["error"].as_str().map(str::to_string).or_else(|| {
        v["report"]["skipped"]
            .as_array()
            .map(|s| s.iter().map(|x| x["reason"].to_string()).collect::<Vec<_>>().join("; "))
    });
    assert!(why.as_deref().is_some_and(|w| !w.is_empty()), "says why nothing is fitted: {body}");
    p.stop.cancel();
    p.task.await.expect("joins");
}
