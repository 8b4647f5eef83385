//! `ladder-worker`: one per node (or per GPU) of a ladder cluster.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "ladder-worker", version, about = "ladder's worker daemon")]
struct Args {
    /// The coordinator's URL.
    #[arg(long, env = "LADDER_COORDINATOR", default_value = "http://127.0.0.1:7070")]
    coordinator: String,
    /// A name for this worker (default: the host name).
    #[arg(long, env = "LADDER_WORKER_NAME")]
    name: Option<String>,
    /// Comma-separated slots, one attempt each: cpu, cuda:0, cuda:1, …
    #[arg(long, env = "LADDER_SLOTS", default_value = "cpu", value_delimiter = ',')]
    slots: Vec<ladder_core::job::Slot>,
    /// Cache of datasets and scratch space of attempts.
    #[arg(long, env = "LADDER_WORK_DIR", default_value = "ladder-worker")]
    work_dir: PathBuf,
    /// The ladder-train binary (default: beside this one).
    #[arg(long, env = "LADDER_TRAINER")]
    trainer: Option<PathBuf>,
    /// Bearer token for the coordinator (prefer the environment variable to the flag).
    #[arg(long, env = "LADDER_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    token: Option<String>,
    /// A file holding this worker's own token (a mounted secret): give each worker its own, so
    /// that none can act as another.
    #[arg(long, env = "LADDER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA (PEM) of the coordinator's certificate.
    #[arg(long, env = "LADDER_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// This worker's certificate and key (PEM), for mTLS.
    #[arg(long, env = "LADDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "LADDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (GET /metrics, GET /healthz).
    #[arg(long, env = "LADDER_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Cores the CPU slots share (default: all of this machine's). Jobs that fix no `threads`
    /// split them evenly and grow as others finish.
    #[arg(long, env = "LADDER_CPU_CORES")]
    cpu_cores: Option<usize>,
    /// Most jobs one slot trains at once as one fused batched model (jobs of a sweep whose spec
    /// sets `resources.fuse`; same shape and batch, differing in seed or learning rate).
    #[arg(long, env = "LADDER_FUSE", default_value_t = 1)]
    fuse: u32,
    /// Seconds the first registration waits for an unreachable coordinator before this worker
    /// exits with an error (later outages are waited out).
    #[arg(long, env = "LADDER_REGISTER_TIMEOUT", default_value_t = 120.0)]
    register_timeout: f64,
    /// Simulate these GPUs instead of probing, e.g. `0=16GiB,1=8GiB`: the cuda slots are
    /// scheduled against this memory and their attempts run on the CPU (for testing the GPU
    /// scheduling on a machine without one).
    #[arg(long, env = "LADDER_SIMULATE_GPUS")]
    simulate_gpus: Option<String>,
    #[arg(long, env = "LADDER_LOG_JSON")]
    log_json: bool,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LADDER_LOG").unwrap_or_else(|_| "info".into());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if args.log_json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let trainer = match args.trainer {
        Some(t) => t,
        None => std::env::current_exe().context("locating this binary")?.with_file_name("ladder-train"),
    };
    let name = args
        .name
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "worker".into());
    let token = CancellationToken::new();
    let signals = tokio::spawn(ladder_http::signal::cancel_on_signal(token.clone()));
    let cfg = ladder_worker::WorkerConfig {
        coordinator: args.coordinator,
        name,
        slots: args.slots.iter().map(ToString::to_string).collect(),
        work_dir: args.work_dir,
        trainer,
        token: match &args.token_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading the token file {}", f.display()))?
                    .trim()
                    .to_string(),
            ),
            None => args.token,
        },
        tls: ladder_proto::tls::ClientTls { ca: args.tls_ca, cert: args.tls_cert, key: args.tls_key, domain: None },
        cpu_cores: args.cpu_cores,
        fuse: args.fuse,
        register_timeout: std::time::Duration::try_from_secs_f64(args.register_timeout)
            .context("--register-timeout must be a number of seconds ≥ 0")?,
        simulate_gpus: args.simulate_gpus.as_deref().map(ladder_worker::gpu::parse_simulated).transpose()?,
        acquire_wait: std::time::Duration::from_secs(5),
    };
    let metrics = match &args.metrics_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            println!("metrics on {}", l.local_addr().context("reading the metrics address")?);
            Some(l)
        }
        None => None,
    };
    let ran = ladder_worker::run_with_metrics(cfg, metrics, token.clone()).await;
    token.cancel();
    let _ = signals.await;
    ran?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ladder-worker: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
