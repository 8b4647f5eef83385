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
