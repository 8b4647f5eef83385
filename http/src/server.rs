//! Serving an axum router over hyper (HTTP/1.1) with bounded resources: at most
//! [`Limits::max_connections`] at once, each request's head read within [`Limits::head_timeout`],
//! and every connection closed after [`Limits::deadline`] when one is set.
//!
//! A connection past the cap evicts the oldest one waiting for a request head (before its first,
//! or idle between two), so idle connections (a port scan, a stalled client, someone holding
//! them on purpose, trickling requests) cannot keep a probe that sends its request at once from
//! being answered. A request refused for want of credentials (401, 403) ends its connection.
//! When every connection is busy answering (or streaming events), the new one is closed.
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What one server may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    /// No connection lives longer; None for long-lived streams (server-sent events).
    pub deadline: Option<Duration>,
    /// Serve more than one request per connection.
    pub keep_alive: bool,
}

impl Limits {
    /// Scrapes and probes: short connections, one request each.
    pub const PROBES: Limits = Limits {
        max_connections: 32,
        head_timeout: Duration::from_secs(5),
        deadline: Some(Duration::from_secs(10)),
        keep_alive: false,
    };
}

/// A live connection: cancelled to evict it; `waiting` until its first request head arrived.
struct Conn {
    id: u64,
    evict: CancellationToken,
    waiting: Arc<AtomicBool>,
}

/// The live connections, oldest first.
#[derive(Default, Clone)]
struct Conns(Arc<Mutex<VecDeque<Conn>>>, Arc<AtomicU64>);

impl Conns {
    /// Admits a connection: at the cap, the oldest one still waiting for its head is evicted;
    /// None when every one is busy.
    fn admit(&self, max: usize) -> Option<(u64, CancellationToken, Arc<AtomicBool>)> {
        let mut g = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.len() >= max {
            let idle = g.iter().position(|c| c.waiting.load(Ordering::SeqCst))?;
            if let Some(c) = g.remove(idle) {
                c.evict.cancel();
            }
        }
        let id = self.1.fetch_add(1, Ordering::Relaxed);
        let (evict, waiting) = (CancellationToken::new(), Arc::new(AtomicBool::new(true)));
        g.push_back(Conn { id, evict: evict.clone(), waiting: waiting.clone() });
        Some((id, evict, waiting))
    }

    fn leave(&self, id: u64) {
        let mut g = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.retain(|c| c.id != id);
    }
}

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) {
    serve_tls(listener, app, limits, None, shutdown).await;
}

/// [`serve`], over TLS when `tls` is given (the handshake must end within the head timeout).
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let conns = Conns::default();
    loop {
        let (sock, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    // Out of descriptors, say: wait rather than spin on the error.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some((id, evict, waiting)) = conns.admit(limits.max_connections) else {
            drop(sock); // every connection is busy answering
            continue;
        };
        let (app, shutdown, conns, acceptor) = (app.clone(), shutdown.clone(), conns.clone(), acceptor.clone());
        tokio::spawn(async move {
            match acceptor {
                None => connection(sock, app, limits, waiting, evict, shutdown).await,
                Some(a) => {
                    // A failed or slow handshake is dropped.
                    if let Ok(Ok(tls)) = tokio::time::timeout(limits.head_timeout, a.accept(sock)).await {
                        connection(tls, app, limits, waiting, evict, shutdown).await;
                    }
                }
            }
            conns.leave(id);
        });
    }
}

/// One connection: requests until it closes, is evicted or outlives the deadline.
async fn connection<IO>(
    io: IO,
    app: Router,
    limits: Limits,
    waiting: Arc<AtomicBool>,
    evict: CancellationToken,
    shutdown: CancellationToken,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        waiting.store(false, Ordering::SeqCst);
        let (app, waiting) = (app.clone(), waiting.clone());
        async move {
            use tower::ServiceExt;
            let mut r = app.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
            use axum::body::HttpBody;
            use axum::http::{HeaderValue, header};
            if matches!(r.status().as_u16(), 401 | 403) {
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            // A body of known size is soon written: the connection then waits for its next head
            // and is evictable. One that streams (events, a sweep's curves) stays busy.
            if r.body().size_hint().exact().is_some() {
                waiting.store(true, Ordering::SeqCst);
            }
            Ok::<_, Infallible>(r)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .keep_alive(limits.keep_alive)
        .serve_connection(TokioIo::new(io), service);
    let conn = async {
        tokio::select! {
            _ = conn => {}
            _ = shutdown.cancelled() => {}
            _ = evict.cancelled() => {}
        }
    };
    match limits.deadline {
        Some(d) => {
            let _ = tokio::time::timeout(d, conn).await;
        }
        None => conn.await,
    }
}
