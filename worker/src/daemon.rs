//! The worker daemon: registers its slots, keeps its leases alive, and runs one attempt per slot.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladder_proto::pb;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use crate::attempt::{self, Client, Env};
use crate::cpu::CpuPool;
use crate::error::Result;
use crate::transfer::retry;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// e.g. `http://127.0.0.1:7070`.
    pub coordinator: String,
    pub name: String,
    /// `cpu`, `cuda:0`, …: one attempt at a time on each.
    pub slots: Vec<String>,
    pub work_dir: PathBuf,
    /// The `ladder-train` binary.
    pub trainer: PathBuf,
    /// Bearer token, when the coordinator requires one.
    pub token: Option<String>,
    /// TLS to the coordinator (CA, and for mTLS this worker's certificate).
    pub tls: ladder_proto::tls::ClientTls,
    /// Serve Prometheus metrics here (GET /metrics).
    pub metrics_listen: Option<String>,
    /// Cores shared by the CPU slots (default: all this machine has).
    pub cpu_cores: Option<usize>,
    /// Most jobs a slot trains at once as one fused model (jobs of sweeps that allow it).
    pub fuse: u32,
    /// How long the first registration may wait for an unreachable coordinator before the
    /// worker gives up (a later outage is waited out without limit).
    pub register_timeout: Duration,
}

impl WorkerConfig {
    /// A worker with defaults for everything but where it connects, what it runs and where.
    pub fn new(coordinator: String, name: String, slots: Vec<String>, work_dir: PathBuf, trainer: PathBuf) -> Self {
        Self {
            coordinator,
            name,
            slots,
            work_dir,
            trainer,
            token: None,
            tls: Default::default(),
            metrics_listen: None,
            cpu_cores: None,
            fuse: 1,
            register_timeout: Duration::from_secs(120),
        }
    }
}

fn metrics_text(s: &attempt::WorkerStats, slots: usize) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut e = ladder_proto::metrics::Exposition::default();
    e.gauge("ladder_worker_slots", "Slots this worker runs attempts on.", slots as f64);
    e.gauge("ladder_worker_children", "Attempts with a live ladder-train child.", s.children.load(Relaxed) as f64);
    let backlog: [(&[(&str, &str)], f64); 2] = [
        (&[("kind", "events")], s.backlog_events.load(Relaxed) as f64),
        (&[("kind", "checkpoint_bytes")], s.backlog_checkpoint_bytes.load(Relaxed) as f64),
    ];
    e.family("ladder_worker_upload_backlog", "Events and checkpoint bytes not yet acknowledged.", "gauge", &backlog);
    e.finish()
}

type Running = Arc<Mutex<HashMap<(u64, u32), CancellationToken>>>;

fn running_refs(running: &Running) -> Vec<pb::AttemptRef> {
    running
        .lock()
        .map(|m| m.keys().map(|&(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect())
        .unwrap_or_default()
}

/// Runs until `shutdown`; running children are then asked to checkpoint (SIGTERM), their
/// checkpoints uploaded and their leases released before this returns.
pub async fn run(cfg: WorkerConfig, shutdown: CancellationToken) -> Result<()> {
    let mut endpoint = Endpoint::from_shared(cfg.coordinator.clone())?;
    if let Some(tls) = cfg.tls.config(cfg.coordinator.starts_with("https://"))? {
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel =
        endpoint.connect_timeout(Duration::from_secs(3)).tcp_keepalive(Some(Duration::from_secs(10))).connect_lazy();
    let bearer = ladder_proto::auth::Bearer::new(cfg.token.as_deref())?;
    let client = Client::new(tonic::service::interceptor::InterceptedService::new(channel, bearer))
        .max_decoding_message_size(16 << 20)
        .max_encoding_message_size(16 << 20);
    let req = pb::RegisterRequest { name: cfg.name.clone(), slots: cfg.slots.clone() };
    let last = Arc::new(Mutex::new(String::new()));
    let registering = retry(&shutdown, || {
        let mut c = client.clone();
        let r = req.clone();
        let last = last.clone();
        async move {
            let out = c.register(r).await.map(|r| r.into_inner());
            if let (Err(e), Ok(mut l)) = (&out, last.lock()) {
                *l = e.message().to_string();
            }
            out
        }
    });
    let reg = match tokio::time::timeout(cfg.register_timeout, registering).await {
        Ok(r) => r?,
        Err(_) => {
            let why = last.lock().map(|l| l.clone()).unwrap_or_default();
            return Err(crate::error::WorkerError::Unreachable {
                address: cfg.coordinator.clone(),
                secs: cfg.register_timeout.as_secs_f64(),
                last: why,
            });
        }
    };
    let Some(reg) = reg else {
        return Ok(());
    };
    tracing::info!(worker = %reg.worker_id, slots = ?cfg.slots, "registered");
    let stats = Arc::new(attempt::WorkerStats::default());
    if let Some(addr) = &cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| crate::error::WorkerError::io(format!("binding metrics on {addr}"), e))?;
        let (stats, slots) = (stats.clone(), cfg.slots.len());
        let render: ladder_proto::metrics::Render = Arc::new(move || metrics_text(&stats, slots));
        tokio::spawn(ladder_proto::metrics::serve_metrics(listener, render, shutdown.clone()));
    }
    let cores = cfg.cpu_cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let gpu = crate::gpu::GpuPool::probe(&cfg.trainer, &cfg.slots).await?;
    let env = Env {
        worker_id: reg.worker_id.clone(),
        work_dir: cfg.work_dir.clone(),
        trainer: cfg.trainer.clone(),
        stats,
        cpu: CpuPool::new(cores),
        gpu,
    };
    let running: Running = Arc::default();

    // Heartbeats outlive the slots: leases stay alive while shutdown checkpoints upload.
    let beats_done = CancellationToken::new();
    let beat = {
        let (mut client, running, shutdown, id) =
            (client.clone(), running.clone(), beats_done.clone(), reg.worker_id.clone());
        let period = Duration::from_millis((reg.lease_ttl_ms / 3).max(20));
        tokio::spawn(async move {
            // After a failed heartbeat the next one comes soon (backing off up to the period), so
            // leases survive a coordinator restart that lasts less than their length.
            let mut next = period;
            let mut delays = crate::transfer::backoff();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(next) => {}
                }
                let req = pb::HeartbeatRequest { worker_id: id.clone(), running: running_refs(&running) };
                match client.heartbeat(req).await {
                    Ok(resp) => {
                        next = period;
                        delays = crate::transfer::backoff();
                        for r in resp.into_inner().stop {
                            if let Some(t) = running.lock().ok().and_then(|m| m.get(&(r.job_id, r.attempt)).cloned()) {
                                tracing::warn!(job = r.job_id, attempt = r.attempt, "coordinator says stop");
                                t.cancel();
                            }
                        }
                    }
                    Err(e) => {
                        next = delays.next().unwrap_or(period).min(period);
                        tracing::warn!("heartbeat failed ({}); again in {next:?}", e.message());
                    }
                }
            }
        })
    };

    let mut slots = Vec::new();
    for slot in cfg.slots.clone() {
        let (client, env, running, shutdown) = (client.clone(), env.clone(), running.clone(), shutdown.clone());
        let max_jobs = cfg.fuse.max(1);
        slots.push(tokio::spawn(async move {
            loop {
                // CPU slots take work only while a core is to spare, one slot at a time.
                let turn = if slot == "cpu" {
                    tokio::select! {
                        g = env.cpu.turn() => Some(g),
                        _ = shutdown.cancelled() => return,
                    }
                } else {
                    None
                };
                let (memory_bytes, memory_total_bytes) = env.gpu.offer(&slot);
                let req = pb::AcquireRequest {
                    worker_id: env.worker_id.clone(),
                    slot: slot.clone(),
                    wait_ms: 5_000,
                    max_jobs,
                    memory_bytes,
                    memory_total_bytes,
                };
                let got = retry(&shutdown, || {
                    let mut c = client.clone();
                    let r = req.clone();
                    async move { c.acquire(r).await.map(|r| r.into_inner()) }
                })
                .await;
                let (a, fused) = match got {
                    Ok(Some(pb::AcquireResponse { assignment: Some(a), fused })) => (a, fused),
                    Ok(Some(_)) => continue,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(%slot, "acquire refused: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let members: Vec<(pb::Assignment, CancellationToken)> =
                    std::iter::once(a).chain(fused).map(|a| (a, CancellationToken::new())).collect();
                let share = turn.is_some().then(|| {
                    let assignments: Vec<pb::Assignment> = members.iter().map(|(a, _)| a.clone()).collect();
                    let (fixed, wanted) = attempt::cpu_demand(&assignments, env.cpu.cores());
                    env.cpu.join(fixed, wanted)
                });
                drop(turn);
                let held: u64 = members.iter().map(|(a, _)| a.memory_bytes).sum();
                let _reservation = env.gpu.reserve(&slot, held);
                let keys: Vec<(u64, u32)> = members.iter().map(|(a, _)| (a.job_id, a.attempt)).collect();
                if let Ok(mut m) = running.lock() {
                    for (a, stop) in &members {
                        m.insert((a.job_id, a.attempt), stop.clone());
                    }
                }
                if let Err(e) =
                    attempt::run(client.clone(), env.clone(), slot.clone(), members, share, shutdown.clone()).await
                {
                    tracing::error!(%slot, "attempt failed to run: {e}");
                }
                if let Ok(mut m) = running.lock() {
                    for k in &keys {
                        m.remove(k);
                    }
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
        }));
    }
    for s in slots {
        let _ = s.await;
    }
    beats_done.cancel();
    let _ = beat.await;
    Ok(())
}
