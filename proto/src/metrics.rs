//! Prometheus metrics over HTTP, shared by the coordinator and the workers: each scrape builds a
//! `prometheus-client` registry of the values it reads and encodes it as OpenMetrics text; axum
//! serves it on `GET /metrics` (and `GET /healthz` for probes) over hyper, with at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed at once), a request head read within
//! [`HEAD_TIMEOUT`], and every connection closed after [`DEADLINE`].
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Scrapes served at once; a connection past the cap is closed unanswered.
pub const MAX_CONNECTIONS: usize = 32;
/// A request head must arrive within this.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The exposition's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// One scrape's metrics.
#[derive(Default)]
pub struct Exposition(Registry);

impl Exposition {
    /// One labelled family: `kind` is "counter" or "gauge".
    pub fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(&[(&str, &str)], f64)]) {
        let labels = |l: &[(&str, &str)]| l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        if kind == "counter" {
            let f = Family::<Vec<(String, String)>, FloatCounter>::default();
            for (l, v) in samples {
                f.get_or_create(&labels(l)).inc_by(*v);
            }
            self.0.register(name.trim_end_matches("_total"), help, f);
        } else {
            let f = Family::<Vec<(String, String)>, FloatGauge>::default();
            for (l, v) in samples {
                f.get_or_create(&labels(l)).set(*v);
            }
            self.0.register(name, help, f);
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let g = FloatGauge::default();
        g.set(value);
        self.0.register(name, help, g);
    }

    /// A counter; its name ends in `_total` in the exposition.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        let c = FloatCounter::default();
        c.inc_by(value);
        self.0.register(name.trim_end_matches("_total"), help, c);
    }

    pub fn finish(self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.0);
        out
    }
}

pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

fn router(render: Render) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let render = render.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], render()) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
}

/// Serves `render()` on GET /metrics until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, render: Render, shutdown: CancellationToken) {
    let app = router(render);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (sock, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(sock); // over the cap
            continue;
        };
        let app = app.clone();
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
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(sock), service);
            let _ = tokio::time::timeout(DEADLINE, conn).await;
        });
    }
}
