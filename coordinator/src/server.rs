//! Runs the coordinator: both services on one listener, the lease reaper, graceful shutdown.
use std::path::Path;
use std::sync::Arc;

use ladder_proto::metrics::{Render, serve_metrics};
use ladder_proto::pb::ladder_server::LadderServer;
use ladder_proto::pb::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::auth::{ANY, Auth, Tokens, USERS, WORKERS};
use crate::error::{CoordError, Result};
use crate::service::{Config, Coordinator};
use crate::store::Store;

/// Largest gRPC message accepted (chunks are 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Opens (or creates) the store in `data_dir`.
pub fn open_store(data_dir: &Path) -> Result<Store> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| CoordError::Storage(format!("creating {}: {e}", data_dir.display())))?;
    Store::open(&data_dir.join("ladder.redb"))
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(store: Store, cfg: Config, listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
    serve_with_metrics(store, cfg, listener, None, shutdown).await
}

/// [`serve`], plus Prometheus metrics on `metrics` (GET /metrics).
pub async fn serve_with_metrics(
    store: Store,
    cfg: Config,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<()> {
    let tokens = Arc::new(Tokens::new(cfg.tokens.iter().map(|(r, t)| (*r, t.as_str()))));
    let tls = cfg.tls.clone();
    let coord = Coordinator::new(store, cfg, shutdown.clone());
    let reaper = tokio::spawn(coord.clone().reap_loop());
    if let Some(m) = metrics {
        let (store, counters, ttl) =
            (coord.store.clone(), coord.counters.clone(), coord.cfg.lease_ttl.as_millis() as u64);
        let render: Render = Arc::new(move || crate::metrics::render(&store, &counters, ttl));
        tokio::spawn(serve_metrics(m, render, shutdown.clone()));
    }
    let users = LadderServer::new(coord.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let workers = WorkerServiceServer::new(coord)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Health answers without a token (probes); reflection needs one of any role.
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LadderServer<Coordinator>>().await;
    health.set_serving::<WorkerServiceServer<Coordinator>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ladder_proto::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| CoordError::Storage(format!("reflection: {e}")))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(|e| CoordError::Storage(format!("TLS: {e}")))?;
    }
    let result = builder
        .add_service(health_service)
        .add_service(InterceptedService::new(reflection, Auth::new(tokens.clone(), "reflection", ANY)))
        .add_service(InterceptedService::new(users, Auth::new(tokens.clone(), "Ladder", USERS)))
        .add_service(InterceptedService::new(workers, Auth::new(tokens, "WorkerService", WORKERS)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.clone().cancelled_owned())
        .await
        .map_err(|e| CoordError::Storage(format!("server: {e}")));
    shutdown.cancel();
    let _ = reaper.await;
    result
}
