//! Serving an axum router over hyper (HTTP/1.1) with bounded resources: at most
//! [`Limits::max_connections`] at once (a connection past the cap is closed unanswered), a
//! request head read within [`Limits::head_timeout`], and every connection closed after
//! [`Limits::deadline`] when one is set.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
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

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(sock); // over the cap
            continue;
        };
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    Ok::<_, Infallible>(app.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {}))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.head_timeout)
                .keep_alive(limits.keep_alive)
                .serve_connection(TokioIo::new(sock), service);
            let conn = async {
                tokio::select! {
                    _ = conn => {}
                    _ = shutdown.cancelled() => {}
                }
            };
            match limits.deadline {
                Some(d) => {
                    let _ = tokio::time::timeout(d, conn).await;
                }
                None => conn.await,
            }
        });
    }
}
