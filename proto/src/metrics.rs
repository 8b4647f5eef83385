//! Prometheus text exposition (format 0.0.4) and a minimal HTTP/1.1 endpoint serving it on
//! `GET /metrics` (and `GET /healthz` for probes), shared by the coordinator and the workers.
use std::fmt::Write;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Builds one scrape's text.
#[derive(Default)]
pub struct Exposition(String);

impl Exposition {
    /// One metric family: `kind` is "counter" or "gauge"; each sample has its labels.
    pub fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(&[(&str, &str)], f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(self.0, "{name} {value}");
            } else {
                let l: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('"', "\\\""))).collect();
                let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
            }
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "gauge", &[(&[], value)]);
    }

    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "counter", &[(&[], value)]);
    }

    pub fn finish(self) -> String {
        self.0
    }
}

pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `render()` on GET /metrics until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, render: Render, shutdown: CancellationToken) {
    loop {
        let (mut sock, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut n = 0;
            // Read the request head (a scrape sends no body); give up on oversize heads.
            while n < buf.len() {
                match tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf[n..])).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return,
                    Ok(Ok(k)) => n += k,
                }
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match (head.starts_with("GET "), path) {
                (true, "/metrics") => ("200 OK", "text/plain; version=0.0.4", render()),
                (true, "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
                (true, _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
                _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
