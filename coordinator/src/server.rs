//! Runs the coordinator: both services on one listener, the lease reaper, graceful shutdown.
use std::path::Path;
use std::sync::Arc;

use ladder_http::{Render, serve_metrics};
use ladder_proto::pb::ladder_server::LadderServer;
use ladder_proto::pb::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::auth::{ANY, Auth, Tokens, USERS, WORKERS};
use crate::error::{CoordError, Result};
use crate::service::{Config, Coordinator};
use crate::store::Store;

/// Largest gRPC message accepted (chunks are 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Requests served at once on one connection (HTTP/2 streams); more wait.
pub const MAX_STREAMS_PER_CONNECTION: usize = 64;

/// The accepted connections that sent the 24 bytes of a preface (or a ClientHello) within
/// `deadline` ([`Config::first_bytes`]): a silent connection holds nothing for long.
fn guarded(
    listener: TcpListener,
    deadline: std::time::Duration,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<tokio::net::TcpStream>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (sock, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accepting a connection: {e}");
                        continue;
                    }
                },
            };
            // Small replies (heartbeats, acks) leave at once rather than after a delayed ACK.
            let _ = sock.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 24];
                let ready = tokio::time::timeout(deadline, async {
                    loop {
                        match sock.peek(&mut buf).await {
                            Ok(n) if n >= buf.len() => return true,
                            Ok(0) | Err(_) => return false,
                            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                        }
                    }
                })
                .await;
                if matches!(ready, Ok(true)) {
                    let _ = tx.send(Ok(sock)).await;
                } else {
                    tracing::debug!(%peer, "closed a connection that sent no preface within {deadline:?}");
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Connections the kernel queues for accept. A cluster's workers start together (a Slurm array,
/// a Deployment scaled up): `TcpListener::bind` queues 128 (the 129th of a burst timed out in
/// `tests/listen.rs`), the queue overflowed at 1000 workers, and a connection whose handshake was
/// dropped there was reset once it sent its first request. The kernel caps this at
/// `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` (host:port; the first address it resolves to that binds), with
/// [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr} resolves to no address"))
    }))
}

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
    let first_bytes = cfg.first_bytes;
    let coord = Coordinator::new(store.clone(), cfg, shutdown.clone());
    // Leases found at start get a grace period: the coordinator's own downtime charges no restart.
    let renewed = coord.grace_leases().await?;
    if renewed > 0 {
        tracing::info!(leases = renewed, grace = ?coord.cfg.startup_grace, "renewed the leases found at start");
    }
    let reaper = tokio::spawn(coord.clone().reap_loop());
    if let Some(m) = metrics {
        let (store, counters, clock) = (coord.store.clone(), coord.counters.clone(), coord.cfg.clock.clone());
        let ttl = u64::try_from(coord.cfg.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let render: Render = Arc::new(move || crate::metrics::render(&store, &counters, ttl, clock.as_ref()));
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
        .map_err(|e| CoordError::Server(format!("reflection: {e}")))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.timeout(first_bytes)).map_err(|e| CoordError::Server(format!("TLS: {e}")))?;
    }
    // A failed commit: health turns NOT_SERVING and the server stops (the process exits non-zero).
    let storage_down = {
        let (failed, health, stop, store) = (store.failed(), health.clone(), shutdown.clone(), store.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = failed.cancelled() => {}
                _ = stop.cancelled() => return None,
            }
            health.set_not_serving::<LadderServer<Coordinator>>().await;
            health.set_not_serving::<WorkerServiceServer<Coordinator>>().await;
            let why = store.failure().unwrap_or_else(|| "a commit failed".into());
            tracing::error!("storage failed ({why}); the coordinator stops");
            stop.cancel();
            Some(why)
        })
    };
    let result = builder
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION as u32))
        .add_service(health_service)
        .add_service(InterceptedService::new(reflection, Auth::new(tokens.clone(), "reflection", ANY)))
        .add_service(InterceptedService::new(users, Auth::new(tokens.clone(), "Ladder", USERS)))
        .add_service(InterceptedService::new(workers, Auth::new(tokens, "WorkerService", WORKERS)))
        .serve_with_incoming_shutdown(
            guarded(listener, first_bytes, shutdown.clone()),
            shutdown.clone().cancelled_owned(),
        )
        .await
        .map_err(|e| CoordError::Server(e.to_string()));
    shutdown.cancel();
    let _ = reaper.await;
    let storage_failure = storage_down.await.ok().flatten();
    store.close().await;
    if let Some(why) = storage_failure {
        return Err(CoordError::Storage(why));
    }
    result
}
