//! `GET /metrics` (the exposition a [`Render`] builds at each scrape) and `GET /healthz` (for
//! probes), served with [`Limits::PROBES`].
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition::CONTENT_TYPE;
use crate::server::{Limits, serve};

/// Builds one scrape's text.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The routes of a metrics port.
pub fn router(render: Render) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let render = render.clone();
                async move {
                    // A scrape reads the store: off the async runtime.
                    let text = tokio::task::spawn_blocking(move || render()).await.unwrap_or_default();
                    ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text)
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
}

/// Serves `render()` on GET /metrics until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, render: Render, shutdown: CancellationToken) {
    serve(listener, router(render), Limits::PROBES, shutdown).await;
}
