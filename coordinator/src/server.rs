//! Runs the coordinator: both services on one listener, the lease reaper, graceful shutdown.
use std::path::Path;
use std::sync::Arc;

use ladder_http::{Render, serve_metrics};
use ladder_proto::pb::ladder_server::LadderServer;
use ladder_proto::pb::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use crate::app::{App, Config, Tls};
use crate::auth::{ANY, Auth, Tokens, USERS, WORKERS};
use crate::error::{CoordError, Result};
use crate::service::Grpc;
use crate::store::Store;

/// Largest gRPC message accepted (chunks are 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Requests served at once on one connection (HTTP/2 streams); more wait.
pub const MAX_STREAMS_PER_CONNECTION: usize = 64;

/// Opens (or creates) the store in `data_dir`.
///
/// The folder keeps a ballast file of [`BALLAST_BYTES`]. When the disk has filled up anyway
/// (other programs, logs) and less than that is free at start, the ballast is released: the
/// store then has room to commit while the operator frees space, instead of failing its first
/// commit and stopping again.
pub fn open_store(data_dir: &Path) -> Result<Store> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| CoordError::Storage(format!("creating {}: {e}", data_dir.display())))?;
    let ballast = data_dir.join(BALLAST);
    let free = nix::sys::statvfs::statvfs(data_dir).map(|st| st.blocks_available().saturating_mul(st.fragment_size()));
    if ballast.exists() && free.is_ok_and(|f| f < BALLAST_BYTES) {
        let _ = std::fs::remove_file(&ballast);
        tracing::warn!(
            "the disk of {} is nearly full: released the {} MiB ballast so the store can commit; free space before it fills again",
            data_dir.display(),
            BALLAST_BYTES >> 20
        );
    }
    let store = Store::open(&data_dir.join("ladder.redb"))?;
    if !ballast.exists() && free.is_ok_and(|f| f >= 2 * BALLAST_BYTES) {
        keep_ballast(&ballast);
    }
    Ok(store)
}

/// The ballast file's name in the store's folder, and its size.
pub const BALLAST: &str = "ballast";
pub const BALLAST_BYTES: u64 = 64 << 20;

/// Reserves the ballast (allocated blocks, not a sparse file); where it does not fit, goes on
/// without it.
fn keep_ballast(path: &Path) {
    let made = std::fs::File::create(path).and_then(|f| {
        let len = i64::try_from(BALLAST_BYTES).unwrap_or(i64::MAX);
        nix::fcntl::posix_fallocate(&f, 0, len).map_err(std::io::Error::from)?;
        f.sync_all()
    });
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        tracing::warn!("no room for the {} MiB ballast at {}: {e}", BALLAST_BYTES >> 20, path.display());
    }
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
    serve_all(store, cfg, Listeners { grpc: listener, metrics, web: None }, shutdown).await
}

/// Where the coordinator serves: gRPC, and optionally metrics and the live page (over the same
/// TLS as gRPC, when [`Config::tls`] is set).
pub struct Listeners {
    pub grpc: TcpListener,
    pub metrics: Option<TcpListener>,
    pub web: Option<TcpListener>,
}

/// gRPC's TLS from the coordinator's.
fn grpc_tls(tls: &Tls) -> tonic::transport::ServerTlsConfig {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let mut out = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
    if let Some(ca) = &tls.client_ca_pem {
        out = out.client_ca_root(Certificate::from_pem(ca));
    }
    out
}

/// Serves on every listener until `shutdown`; the live fits run while any page may ask.
pub async fn serve_all(store: Store, cfg: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<()> {
    let Listeners { grpc: listener, metrics, web } = listeners;
    let tokens = Arc::new(Tokens::new(cfg.tokens.iter().map(|(r, t)| (*r, t.as_str()))));
    let tls = cfg.tls.clone();
    let page_tls = match (&tls, &web) {
        (Some(t), Some(_)) => Some(crate::web::tls_config(t)?),
        _ => None,
    };
    let first_bytes = cfg.first_bytes;
    // With tokens, a connection that makes no authenticated call in time is closed.
    let unauthenticated =
        (!tokens.is_empty()).then(|| (Arc::new(crate::listen::Unauthenticated::default()), cfg.auth_within));
    let auth = |service, allowed| {
        let a = Auth::new(tokens.clone(), service, allowed);
        match &unauthenticated {
            Some((list, _)) => a.marking(list.clone()),
            None => a,
        }
    };
    let app = App::new(store.clone(), cfg, shutdown.clone());
    // Leases found at start get a grace period: the coordinator's own downtime charges no restart.
    let renewed = app.grace_leases().await?;
    if renewed > 0 {
        tracing::info!(leases = renewed, grace = ?app.cfg.startup_grace, "renewed the leases found at start");
    }
    let dropped = app.clear_abandoned().await?;
    if dropped > 0 {
        tracing::info!(chunks = dropped, "dropped the uploads a previous process left unfinished");
    }
    let swept = app.sweep_files().await?;
    if swept > 0 {
        tracing::info!(files = swept, "deleted checkpoint files no record names (left by a crash)");
    }
    let reaper = tokio::spawn(app.clone().reap_loop());
    let janitor = tokio::spawn(app.clone().janitor_loop());
    let live = tokio::spawn(app.fits.clone().run(app.store.clone(), app.cfg.clock.clone(), shutdown.clone()));
    let page = web.map(|l| {
        let w = crate::web::Web { app: app.clone(), tokens: tokens.clone(), shutdown: shutdown.clone() };
        tokio::spawn(crate::web::serve(w, l, page_tls))
    });
    let scrape = metrics.map(|m| {
        let (store, counters, clock, fits) =
            (app.store.clone(), app.counters.clone(), app.cfg.clock.clone(), app.fits.clone());
        let ttl = u64::try_from(app.cfg.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let render: Render = Arc::new(move || crate::metrics::render(&store, &counters, &fits, ttl, clock.as_ref()));
        tokio::spawn(serve_metrics(m, render, shutdown.clone()))
    });
    let grpc = Grpc(app);
    let users = LadderServer::new(grpc.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let workers = WorkerServiceServer::new(grpc)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // Health answers without a token (probes); reflection needs one of any role.
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LadderServer<Grpc>>().await;
    health.set_serving::<WorkerServiceServer<Grpc>>().await;
    // Reflection in both versions: v1, and v1alpha for grpcio-reflection, grpcui and older grpcurl.
    let reflection = reflection_builder().build_v1().map_err(|e| CoordError::Server(format!("reflection: {e}")))?;
    let reflection_v1alpha =
        reflection_builder().build_v1alpha().map_err(|e| CoordError::Server(format!("reflection v1alpha: {e}")))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let tls = grpc_tls(&tls).timeout(first_bytes);
        builder = builder.tls_config(tls).map_err(|e| CoordError::Server(format!("TLS: {e}")))?;
    }
    // A failed commit: health turns NOT_SERVING and the server stops (the process exits non-zero).
    let storage_down = {
        let (failed, health, stop, store) = (store.failed(), health.clone(), shutdown.clone(), store.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = failed.cancelled() => {}
                _ = stop.cancelled() => return None,
            }
            health.set_not_serving::<LadderServer<Grpc>>().await;
            health.set_not_serving::<WorkerServiceServer<Grpc>>().await;
            let why = store.failure().unwrap_or_else(|| "a commit failed".into());
            tracing::error!("storage failed ({why}); the coordinator stops");
            stop.cancel();
            Some(why)
        })
    };
    let result = builder
        // A peer that vanished without closing is found and dropped.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION as u32))
        .add_service(health_service)
        .add_service(InterceptedService::new(reflection, auth("reflection", ANY)))
        .add_service(InterceptedService::new(reflection_v1alpha, auth("reflection", ANY)))
        .add_service(InterceptedService::new(users, auth("Ladder", USERS)))
        .add_service(InterceptedService::new(workers, auth("WorkerService", WORKERS)))
        .serve_with_incoming_shutdown(
            crate::listen::guarded(listener, first_bytes, unauthenticated.clone(), shutdown.clone()),
            shutdown.clone().cancelled_owned(),
        )
        .await
        .map_err(|e| CoordError::Server(e.to_string()));
    shutdown.cancel();
    let _ = reaper.await;
    let _ = janitor.await;
    let _ = live.await;
    for task in page.into_iter().chain(scrape) {
        let _ = task.await;
    }
    let storage_failure = storage_down.await.ok().flatten();
    store.close().await;
    if let Some(why) = storage_failure {
        return Err(CoordError::Storage(why));
    }
    result
}

/// The services reflection describes: ladder's and health's.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ladder_proto::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
