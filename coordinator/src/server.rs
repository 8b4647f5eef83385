//! Runs the coordinator: both services on one listener, the lease reaper, graceful shutdown.
use std::path::Path;

use ladder_proto::pb::ladder_server::LadderServer;
use ladder_proto::pb::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::auth::Auth;
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
    let auth = Auth::new(cfg.token.as_deref());
    let coord = Coordinator::new(store, cfg, shutdown.clone());
    let reaper = tokio::spawn(coord.clone().reap_loop());
    let users = LadderServer::new(coord.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let workers = WorkerServiceServer::new(coord)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let result = tonic::transport::Server::builder()
        .add_service(InterceptedService::new(users, auth.clone()))
        .add_service(InterceptedService::new(workers, auth))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.clone().cancelled_owned())
        .await
        .map_err(|e| CoordError::Storage(format!("server: {e}")));
    shutdown.cancel();
    let _ = reaper.await;
    result
}
