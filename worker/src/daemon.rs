//! The worker daemon: registers its slots, keeps its leases alive ([`heartbeats`]), and runs one
//! attempt at a time on each slot ([`slot`]).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladder_core::FailureKind;
use ladder_core::attempt::{Assignment, AttemptEvent};
use tokio_util::sync::CancellationToken;

use crate::attempt;
use crate::cpu::CpuPool;
use crate::env::{Env, WorkerStats};
use crate::error::{Result, WorkerError};
use crate::retry::{backoff, retry};
use crate::rpc::{Ask, Rpc};

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
    /// Cores shared by the CPU slots (default: all this machine has).
    pub cpu_cores: Option<usize>,
    /// Most jobs a slot trains at once as one fused model (jobs of sweeps that allow it).
    pub fuse: u32,
    /// How long the first registration may wait for an unreachable coordinator before the
    /// worker gives up (a later outage is waited out without limit).
    pub register_timeout: Duration,
    /// Simulated GPUs (device index, memory in bytes) instead of probing: their attempts run on
    /// the CPU, so GPU scheduling can be tested without a GPU.
    pub simulate_gpus: Option<Vec<(usize, u64)>>,
    /// How long an idle slot's Acquire long-poll waits for work; a shutdown waits it out.
    pub acquire_wait: Duration,
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
            cpu_cores: None,
            fuse: 1,
            register_timeout: Duration::from_secs(120),
            simulate_gpus: None,
            acquire_wait: Duration::from_secs(5),
        }
    }
}

/// The attempts running on this worker, and the token that stops each.
type Running = Arc<Mutex<HashMap<(u64, u32), CancellationToken>>>;

fn running_refs(running: &Running) -> Vec<(u64, u32)> {
    running.lock().map(|m| m.keys().copied().collect()).unwrap_or_default()
}

/// The first registration: retried while the coordinator is unreachable, for at most
/// `register_timeout`; then an error naming the address. None when shut down first.
async fn register(
    cfg: &WorkerConfig,
    rpc: &Rpc,
    slot_memory: &[u64],
    shutdown: &CancellationToken,
) -> Result<Option<(String, u64)>> {
    let last = Arc::new(Mutex::new(String::new()));
    let registering = retry(shutdown, || {
        let last = last.clone();
        async move {
            let out = rpc.register(&cfg.name, &cfg.slots, slot_memory).await;
            if let (Err(e), Ok(mut l)) = (&out, last.lock()) {
                *l = match e {
                    WorkerError::Rpc(s) => s.message().to_string(),
                    other => other.to_string(),
                };
            }
            out
        }
    });
    match tokio::time::timeout(cfg.register_timeout, registering).await {
        Ok(r) => r,
        Err(_) => Err(WorkerError::Unreachable {
            address: cfg.coordinator.clone(),
            secs: cfg.register_timeout.as_secs_f64(),
            last: last.lock().map(|l| l.clone()).unwrap_or_default(),
        }),
    }
}

/// Renews this worker's leases every third of their length until `done`; after a failed
/// heartbeat the next one comes sooner (backing off up to the period), so leases survive a
/// coordinator restart shorter than their length.
async fn heartbeats(
    rpc: Rpc,
    id: String,
    running: Running,
    ttl_ms: u64,
    done: CancellationToken,
    lost: CancellationToken,
) {
    let period = Duration::from_millis((ttl_ms / 3).max(20));
    let mut next = period;
    let mut delays = backoff();
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
        }
        match rpc.heartbeat(&id, &running_refs(&running)).await {
            Ok(stop) => {
                next = period;
                delays = backoff();
                for r in stop {
                    if let Some(t) = running.lock().ok().and_then(|m| m.get(&r).cloned()) {
                        tracing::warn!(job = r.0, attempt = r.1, "coordinator says stop");
                        t.cancel();
                    }
                }
            }
            Err(e) if e.is_unknown_worker() => {
                tracing::error!("{e}");
                lost.cancel();
                return;
            }
            Err(e) => {
                next = delays.next().unwrap_or(period).min(period);
                tracing::warn!("heartbeat failed ({e}); again in {next:?}");
            }
        }
    }
}

/// Runs until `shutdown`; running children are then asked to checkpoint (SIGTERM), their
/// checkpoints uploaded and their leases released before this returns.
pub async fn run(cfg: WorkerConfig, shutdown: CancellationToken) -> Result<()> {
    run_with_metrics(cfg, None, shutdown).await
}

/// [`run`], serving Prometheus metrics on `metrics` (GET /metrics).
pub async fn run_with_metrics(
    cfg: WorkerConfig,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: CancellationToken,
) -> Result<()> {
    let rpc = Rpc::connect(&cfg.coordinator, cfg.token.as_deref(), &cfg.tls)?;
    let gpu = match &cfg.simulate_gpus {
        Some(devices) => crate::gpu::GpuPool::simulated(devices, &cfg.slots)?,
        None => crate::gpu::GpuPool::probe(&cfg.trainer, &cfg.slots).await?,
    };
    let slot_memory = gpu.slot_memory(&cfg.slots);
    let Some((worker_id, ttl_ms)) = register(&cfg, &rpc, &slot_memory, &shutdown).await? else { return Ok(()) };
    tracing::info!(worker = %worker_id, slots = ?cfg.slots, "registered");
    let stats = Arc::new(WorkerStats::default());
    // Every task below ends by `finished` at the latest, which is cancelled once the slots and
    // the heartbeats have: a stop for any reason (a signal, or a coordinator that lost this
    // worker) reaches them all, and each is joined before this returns.
    let finished = CancellationToken::new();
    let mut metrics = None;
    if let Some(listener) = metrics_listener {
        let (stats, slots, gpu) = (stats.clone(), cfg.slots.len(), gpu.clone());
        let render: ladder_http::Render = Arc::new(move || stats.exposition(slots, &gpu.usage()));
        metrics = Some(tokio::spawn(ladder_http::serve_metrics(listener, render, finished.clone())));
    }
    let cores = cfg.cpu_cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let env = Env {
        worker_id: worker_id.clone(),
        rpc: rpc.clone(),
        work_dir: cfg.work_dir.clone(),
        trainer: cfg.trainer.clone(),
        stats,
        cpu: CpuPool::new(cores),
        gpu,
        acquire_wait: cfg.acquire_wait,
    };
    let running: Running = Arc::default();
    // Heartbeats outlive the slots: leases stay alive while shutdown checkpoints upload. A
    // coordinator that no longer knows this worker stops it (`lost`).
    let (beats_done, lost) = (CancellationToken::new(), CancellationToken::new());
    let stop = shutdown.child_token();
    let lost_stops = {
        let (lost, stop, finished) = (lost.clone(), stop.clone(), finished.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = lost.cancelled() => stop.cancel(),
                _ = finished.cancelled() => {}
            }
        })
    };
    let beat =
        tokio::spawn(heartbeats(rpc, worker_id.clone(), running.clone(), ttl_ms, beats_done.clone(), lost.clone()));
    let slots: Vec<_> = cfg
        .slots
        .iter()
        .map(|s| tokio::spawn(slot(env.clone(), s.clone(), cfg.fuse.max(1), running.clone(), stop.clone())))
        .collect();
    for s in slots {
        let _ = s.await;
    }
    beats_done.cancel();
    let _ = beat.await;
    finished.cancel();
    let _ = lost_stops.await;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    if lost.is_cancelled() {
        return Err(WorkerError::Corrupt(format!(
            "the coordinator at {} no longer knows worker {worker_id} (was its store replaced?): restart this worker",
            cfg.coordinator
        )));
    }
    Ok(())
}

/// One slot: asks for work (a CPU slot only while a core is to spare), runs what it leases, and
/// again, until `shutdown`.
async fn slot(env: Env, slot: String, max_jobs: u32, running: Running, shutdown: CancellationToken) {
    loop {
        // CPU slots take work only while a core is to spare, one slot at a time; the slots of one
        // GPU take turns, so what one offers is not offered by another.
        let turn = if slot == "cpu" {
            tokio::select! {
                g = env.cpu.turn() => Some(g),
                _ = shutdown.cancelled() => return,
            }
        } else {
            None
        };
        let gpu_turn = tokio::select! {
            g = env.gpu.turn(&slot) => g,
            _ = shutdown.cancelled() => return,
        };
        let (memory_bytes, memory_total_bytes) = env.gpu.offer(&slot);
        let ask = Ask {
            worker_id: env.worker_id.clone(),
            slot: slot.clone(),
            wait: env.acquire_wait,
            max_jobs,
            memory_bytes,
            memory_total_bytes,
        };
        let leased = match retry(&shutdown, || env.rpc.acquire(&ask)).await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%slot, "acquire refused: {e}");
                drop(gpu_turn);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for (job_id, attempt, why) in &leased.unreadable {
            unreadable(&env, *job_id, *attempt, why.to_string()).await;
        }
        if leased.assignments.is_empty() {
            continue;
        }
        let share = turn.is_some().then(|| {
            let (fixed, wanted) = attempt::cpu_demand(&leased.assignments, env.cpu.cores());
            env.cpu.join(fixed, wanted)
        });
        drop(turn);
        let held: u64 = leased.assignments.iter().map(|a| a.memory_bytes).sum();
        let reservation = env.gpu.reserve(&slot, held);
        drop(gpu_turn);
        run_leased(&env, &slot, leased.assignments, share, reservation, &running, &shutdown).await;
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Runs one lease (one job, or several fused) to its end, holding its GPU memory meanwhile.
async fn run_leased(
    env: &Env,
    slot: &str,
    assignments: Vec<Assignment>,
    share: Option<(crate::cpu::CpuShare, i32)>,
    reservation: Option<crate::gpu::GpuReservation>,
    running: &Running,
    shutdown: &CancellationToken,
) {
    let members: Vec<(Assignment, CancellationToken)> =
        assignments.into_iter().map(|a| (a, CancellationToken::new())).collect();
    let shared = reservation.as_ref().map(crate::gpu::GpuReservation::shared);
    let keys: Vec<(u64, u32)> = members.iter().map(|(a, _)| (a.job_id, a.attempt)).collect();
    if let Ok(mut m) = running.lock() {
        for (a, stop) in &members {
            m.insert((a.job_id, a.attempt), stop.clone());
        }
    }
    if let Err(e) = attempt::run(env.clone(), slot.to_string(), members, share, shared, shutdown.clone()).await {
        tracing::error!(%slot, "attempt failed to run: {e}");
    }
    if let Ok(mut m) = running.lock() {
        for k in &keys {
            m.remove(k);
        }
    }
}

/// A leased job whose config this worker cannot read fails as invalid.
async fn unreadable(env: &Env, job_id: u64, attempt: u32, why: String) {
    tracing::error!(job = job_id, attempt, "the assignment does not read: {why}");
    let message = format!("worker {}: {why}", env.worker_id);
    let ev = AttemptEvent::Failed { kind: FailureKind::InvalidConfig, message, shared_device: false };
    let stop = CancellationToken::new();
    if let Err(e) = retry(&stop, || env.rpc.report(&env.worker_id, job_id, attempt, std::slice::from_ref(&ev))).await {
        tracing::error!(job = job_id, attempt, "reporting it failed: {e}");
    }
}
