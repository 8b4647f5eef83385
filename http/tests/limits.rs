//! Issue 19, finding 9: connections held idle (a port scan, a stalled client, someone doing it on
//! purpose) never keep a probe from being answered; a connection past the cap evicts the oldest
//! idle one.
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use ladder_http::{Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

async fn get_healthz(addr: std::net::SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn a_probe_is_answered_while_every_connection_is_held_idle() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    let server = tokio::spawn(serve(listener, app, Limits::PROBES, stop.clone()));
    // Twice the cap, opened and never written to.
    let mut idle = Vec::new();
    for _ in 0..2 * Limits::PROBES.max_connections {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for probe in 0..5 {
        let answer = tokio::time::timeout(Duration::from_secs(2), get_healthz(addr))
            .await
            .unwrap_or_else(|_| panic!("probe {probe} not answered within 2 s, its head timeout is 5 s"));
        assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok"), "probe {probe}: {answer}");
    }
    // The oldest idle connections were closed to make room.
    let mut closed = 0;
    for c in &mut idle {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(20), c.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(closed >= Limits::PROBES.max_connections, "{closed} idle connections evicted");
    stop.cancel();
    server.await.expect("joined");
}

/// A page's server in miniature: `/open` answers anyone, `/guarded` only with `X-Token: t`.
fn page() -> Router {
    use axum::http::{HeaderMap, StatusCode};
    Router::new().route("/open", get(|| async { "ok" })).route(
        "/guarded",
        get(|h: HeaderMap| async move {
            if h.get("x-token").is_some_and(|v| v == "t") {
                (StatusCode::OK, "ok")
            } else {
                (StatusCode::UNAUTHORIZED, "no")
            }
        }),
    )
}

#[tokio::test]
async fn trickled_requests_cannot_hold_the_connections_and_a_refusal_ends_its_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let limits = Limits { max_connections: 8, head_timeout: Duration::from_secs(5), deadline: None, keep_alive: true };
    let server = tokio::spawn(serve(listener, page(), limits, stop.clone()));
    // A refused request's connection is closed at once (no keep-alive for it).
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /guarded HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut out)).await.expect("closed").expect("read");
    assert!(out.starts_with("HTTP/1.1 401") && out.to_ascii_lowercase().contains("connection: close"), "{out}");
    // Twice the cap of clients: each asks once, then trickles its next request a byte at a time.
    let mut trickling = Vec::new();
    for _ in 0..2 * limits.max_connections {
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_millis(500), c.read(&mut buf)).await;
        trickling.push(tokio::spawn(async move {
            for b in b"GET /open HTTP/1.1\r\nHost: x\r\n".iter().cycle() {
                if c.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for probe in 0..3 {
        let answer = tokio::time::timeout(Duration::from_secs(2), async {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /open HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out).await;
            out
        })
        .await
        .unwrap_or_else(|_| panic!("probe {probe} not answered while clients trickle"));
        assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok"), "probe {probe}: {answer:?}");
    }
    trickling.iter().for_each(|t| t.abort());
    stop.cancel();
    server.await.expect("joined");
}
