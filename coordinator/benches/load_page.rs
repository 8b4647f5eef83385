//! A browser's load on the coordinator's web page, for the load benchmark: the page's first
//! load (the sweep with its jobs, its curves, its fits), then its server-sent event stream read
//! for as long as the run lasts, as an open tab does. Plain HTTP/1.1 over a TCP stream.
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the page received.
#[derive(Debug, Default)]
pub struct PageLoad {
    /// Bytes of the first load's three JSON answers.
    pub load_bytes: u64,
    /// Server-sent events received (`event:` lines) and their bytes.
    pub events: u64,
    pub event_bytes: u64,
}

async fn request(addr: &str, path: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    Ok(s)
}

/// Reads one whole answer; panics unless it is a 200.
async fn get(addr: &str, path: &str) -> u64 {
    let mut s = request(addr, path).await.expect("page connect");
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.expect("page read");
    assert!(body.starts_with(b"HTTP/1.1 200"), "GET {path}: {}", String::from_utf8_lossy(&body[..body.len().min(80)]));
    body.len() as u64
}

/// Opens the page of `sweep` at `addr` and follows its events until `deadline`.
pub async fn open(addr: String, sweep: String, deadline: Instant) -> PageLoad {
    let mut out = PageLoad::default();
    for path in
        [format!("/api/sweeps/{sweep}"), format!("/api/sweeps/{sweep}/curves"), format!("/api/sweeps/{sweep}/fits")]
    {
        out.load_bytes += get(&addr, &path).await;
    }
    let mut s = request(&addr, &format!("/api/sweeps/{sweep}/events")).await.expect("events connect");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return out;
        }
        match tokio::time::timeout(left.min(Duration::from_secs(1)), s.read(&mut buf)).await {
            Ok(Ok(0)) => return out,
            Ok(Ok(n)) => {
                out.event_bytes += n as u64;
                out.events += buf[..n].windows(6).filter(|w| w == b"event:").count() as u64;
            }
            Ok(Err(e)) => panic!("events: {e}"),
            Err(_) => {}
        }
    }
}
