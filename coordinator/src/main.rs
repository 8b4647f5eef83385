//! `ladder-coordinator`: the stateful gRPC server of a ladder cluster.
// jemalloc returns freed memory to the system (decay-based purging); glibc's arenas held it, so
// the RSS of a long run grew with the churn of points and uploads, not with what it kept.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread purges freed pages within a second.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ladder_coordinator::auth::Role;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "ladder-coordinator", version, about = "ladder's coordinator: sweeps, jobs, leases, curves")]
struct Args {
    /// Address to listen on; port 0 picks a free one (printed on stdout).
    #[arg(long, env = "LADDER_LISTEN", default_value = "127.0.0.1:7070")]
    listen: String,
    /// Folder of the redb store.
    #[arg(long, env = "LADDER_DATA_DIR", default_value = "ladder-data")]
    data_dir: PathBuf,
    /// Lease length without a heartbeat, in milliseconds (at least 100).
    #[arg(long, env = "LADDER_LEASE_TTL_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..))]
    lease_ttl_ms: u64,
    /// Leases found at start are renewed to now + this many milliseconds (default: three lease
    /// lengths), so the coordinator's own downtime charges no restart.
    #[arg(long, env = "LADDER_STARTUP_GRACE_MS")]
    startup_grace_ms: Option<u64>,
    /// Largest checkpoint accepted, in bytes.
    #[arg(long, env = "LADDER_MAX_CHECKPOINT_BYTES", default_value_t = 8 << 30)]
    max_checkpoint_bytes: u64,
    /// Uploads (checkpoints, datasets) are refused when storing them would leave less than this
    /// many bytes free on the store's disk.
    #[arg(long, env = "LADDER_MIN_FREE_BYTES", default_value_t = 1 << 30)]
    min_free_bytes: u64,
    /// Admin bearer token: may call every RPC (prefer the environment variable to the flag).
    #[arg(long, env = "LADDER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Token of the `user` role: the Ladder service only (submit, watch, fit, …).
    #[arg(long, env = "LADDER_USER_TOKEN", hide_env_values = true)]
    user_token: Option<String>,
    /// Token of the `worker` role: the WorkerService only.
    #[arg(long, env = "LADDER_WORKER_TOKEN", hide_env_values = true)]
    worker_token: Option<String>,
    /// Worker tokens: a file of one per line, or a folder of one per file (a mounted Secret).
    /// Give each worker its own: a worker id stays bound to the token that registered it.
    #[arg(long, env = "LADDER_WORKER_TOKENS_FILE")]
    worker_tokens_file: Option<PathBuf>,
    /// TLS certificate (PEM); with --tls-key, the coordinator serves TLS only.
    #[arg(long, env = "LADDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "LADDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: mTLS.
    #[arg(long, env = "LADDER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (GET /metrics, GET /healthz).
    #[arg(long, env = "LADDER_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Serve the live web page on this address (HTTPS with the TLS certificate when one is
    /// given; the same tokens as gRPC).
    #[arg(long, env = "LADDER_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// Serve addresses other machines can reach without any token (a closed network only).
    #[arg(long, env = "LADDER_INSECURE_NO_TOKEN")]
    insecure_no_token: bool,
    /// Log JSON lines instead of text.
    #[arg(long, env = "LADDER_LOG_JSON")]
    log_json: bool,
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LADDER_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn server_tls(args: &Args) -> anyhow::Result<Option<ladder_coordinator::Tls>> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else { return Ok(None) };
    let client_ca_pem = args.tls_client_ca.as_ref().map(read).transpose()?;
    Ok(Some(ladder_coordinator::Tls { cert_pem: read(cert)?, key_pem: read(key)?, client_ca_pem }))
}

/// The tokens configured, checked: none a placeholder or too short, and no shared worker token
/// beside per-worker ones (a worker id stays bound to the token that registered it: one token
/// for every worker would let any of them act as another).
fn tokens(args: &Args) -> anyhow::Result<Vec<(Role, String)>> {
    let mut tokens: Vec<(Role, String)> = [
        (Role::Admin, args.token.clone()),
        (Role::User, args.user_token.clone()),
        (Role::Worker, args.worker_token.clone()),
    ]
    .into_iter()
    .filter_map(|(r, t)| t.filter(|t| !t.trim().is_empty()).map(|t| (r, t)))
    .collect();
    if let Some(f) = &args.worker_tokens_file {
        anyhow::ensure!(
            args.worker_token.as_deref().is_none_or(|t| t.trim().is_empty()),
            "LADDER_WORKER_TOKEN (--worker-token) is one token for every worker, and --worker-tokens-file gives each worker its own: use only the file"
        );
        let found = ladder_coordinator::auth::worker_tokens(f).with_context(|| format!("reading {}", f.display()))?;
        anyhow::ensure!(!found.is_empty(), "{} holds no worker token", f.display());
        tokens.extend(found.into_iter().map(|t| (Role::Worker, t)));
    }
    for (role, t) in &tokens {
        ladder_coordinator::auth::check_token(t).map_err(|why| anyhow::anyhow!("the {} token {why}", role.name()))?;
    }
    Ok(tokens)
}

/// Refuses to serve `addr` (given as `flag`) to other machines without a token.
async fn refuse_exposed(flag: &str, addr: &str) -> anyhow::Result<()> {
    let resolved: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host(addr).await.with_context(|| format!("resolving {flag} {addr}"))?.collect();
    if resolved.iter().any(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "{flag} {addr} is reachable from other machines and no token is configured: anyone could submit, cancel and read sweeps. Set LADDER_TOKEN (and worker tokens), listen on 127.0.0.1, or pass --insecure-no-token"
        );
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    init_tracing(args.log_json);
    // Settings are checked before anything is opened or listens.
    let tokens = tokens(&args)?;
    if tokens.is_empty() && !args.insecure_no_token {
        refuse_exposed("--listen", &args.listen).await?;
        if let Some(a) = &args.http_listen {
            refuse_exposed("--http-listen", a).await?;
        }
    }
    let store = ladder_coordinator::open_store(&args.data_dir)
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let listener = ladder_coordinator::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "coordinator started");
    let token = CancellationToken::new();
    let signals = tokio::spawn(ladder_http::signal::cancel_on_signal(token.clone()));
    let tls = server_tls(&args)?;
    let ttl = Duration::from_millis(args.lease_ttl_ms);
    let cfg = ladder_coordinator::Config {
        tls,
        lease_ttl: ttl,
        startup_grace: args.startup_grace_ms.map_or(3 * ttl, Duration::from_millis),
        max_checkpoint_bytes: args.max_checkpoint_bytes,
        data_dir: Some(args.data_dir.clone()),
        min_free_bytes: args.min_free_bytes,
        tokens,
        ..Default::default()
    };
    let metrics = match &args.metrics_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding {a}"))?;
            println!("metrics on {}", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    let web = match &args.http_listen {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a).await.with_context(|| format!("binding {a}"))?;
            let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
            println!("page at {scheme}://{}/", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    let listeners = ladder_coordinator::Listeners { grpc: listener, metrics, web };
    let served = ladder_coordinator::serve_all(store, cfg, listeners, token.clone()).await;
    token.cancel();
    let _ = signals.await;
    served?;
    tracing::info!("coordinator stopped");
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ladder-coordinator: error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = rt.block_on(run(args));
    // Every task the server started has been joined; a live fit still computing on a blocking
    // thread is abandoned, not waited for.
    rt.shutdown_timeout(Duration::from_millis(500));
    match out {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ladder-coordinator: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
