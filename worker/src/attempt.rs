//! One attempt: of one job, or of several jobs of one shape fused into one batched model. It
//! fetches the dataset and resume checkpoints, runs `ladder-train` as a child, routes the
//! child's events to each job's outbox, uploads checkpoints once the curve before them is durable,
//! and reports how each job ended. A fenced job is dropped from the child (the last one kills it)
//! and reports nothing more.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ladder_core::events::{Event, MemberEvent};
use ladder_core::job::JobConfig;
use ladder_proto::pb;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::archive;
use crate::cpu::{CpuPool, CpuShare};
use crate::error::{Result, WorkerError};
use crate::report::{self, Outbox};
use crate::transfer::{download_checkpoint, ensure_dataset, retry, upload_checkpoint};

pub type Client = WorkerServiceClient<ladder_proto::auth::AuthChannel>;

/// Where and how attempts run.
#[derive(Debug, Clone)]
pub struct Env {
    pub worker_id: String,
    pub work_dir: PathBuf,
    pub trainer: PathBuf,
    pub stats: Arc<WorkerStats>,
    /// The cores CPU attempts share.
    pub cpu: CpuPool,
}

/// What the worker's /metrics reports.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Attempts with a live (or starting) `ladder-train` child.
    pub children: AtomicI64,
    /// Events read from children and not yet acknowledged by the coordinator.
    pub backlog_events: AtomicI64,
    /// Checkpoint bytes packed and not yet uploaded.
    pub backlog_checkpoint_bytes: AtomicI64,
}

fn failed(kind: pb::FailureKind, message: String) -> pb::AttemptEvent {
    pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Failed(pb::AttemptFailed { kind: kind as i32, message })) }
}

/// How long a trainer may take to checkpoint after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(60);

/// One job of the attempt.
struct Member {
    a: pb::Assignment,
    dir: PathBuf,
    outbox: Outbox,
    reporting: tokio::task::JoinHandle<()>,
    /// Cancelled when the coordinator fences this job's attempt (or the reporter finds it fenced).
    stop: CancellationToken,
    /// Its final event, once the trainer sent one.
    last: Option<pb::AttemptEvent>,
    /// Fenced: dropped from the child, reports nothing more.
    dropped: bool,
}

/// Runs the assignments (one, or several fused) to their end; a CPU attempt holds its `share` of
/// the cores. A job's `stop` (fencing) drops it from the child; `shutdown` sends the child
/// SIGTERM: it checkpoints, the checkpoints are uploaded, and the leases are released.
pub async fn run(
    client: Client,
    env: Env,
    slot: String,
    assignments: Vec<(pb::Assignment, CancellationToken)>,
    share: Option<(CpuShare, i32)>,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut members = Vec::with_capacity(assignments.len());
    for (a, stop) in assignments {
        let dir = env.work_dir.join("attempts").join(format!("job-{}-a{}", a.job_id, a.attempt));
        std::fs::create_dir_all(&dir).map_err(|e| WorkerError::io(format!("creating {}", dir.display()), e))?;
        let ids = (env.worker_id.clone(), a.job_id, a.attempt);
        let (outbox, reporting) = report::start(client.clone(), ids, stop.clone(), env.stats.clone());
        members.push(Member { a, dir, outbox, reporting, stop, last: None, dropped: false });
    }
    env.stats.children.fetch_add(1, Ordering::Relaxed);
    let outcome = run_child(client, &env, &slot, &mut members, share, &shutdown).await;
    env.stats.children.fetch_sub(1, Ordering::Relaxed);
    if let Err(e) = outcome {
        tracing::error!(jobs = ?members.iter().map(|m| m.a.job_id).collect::<Vec<_>>(), "attempt could not run: {e}");
        let kind =
            if matches!(e, WorkerError::Domain(_)) { pb::FailureKind::InvalidConfig } else { pb::FailureKind::Crashed };
        for m in members.iter_mut().filter(|m| !m.dropped && m.last.is_none()) {
            m.last = Some(failed(kind, format!("worker {}: {e}", env.worker_id)));
        }
    }
    for m in members {
        if let (false, Some(last)) = (m.dropped, m.last) {
            m.outbox.send(last);
        }
        drop(m.outbox);
        let _ = m.reporting.await;
        let _ = std::fs::remove_dir_all(&m.dir);
    }
    Ok(())
}

/// The job configs written for the child, with this worker's paths.
fn write_config(m: &Member, data: &Path) -> Result<(PathBuf, JobConfig)> {
    let mut cfg = JobConfig::from_toml(&m.a.config_toml, "assignment")?;
    cfg.data.dir = data.to_path_buf();
    cfg.checkpoint.dir = m.dir.join("checkpoints");
    let path = m.dir.join("job.toml");
    std::fs::write(&path, cfg.to_toml()).map_err(|e| WorkerError::io("writing job.toml", e))?;
    Ok((path, cfg))
}

/// Copies a checkpoint folder aside (hard links where possible) so the trainer's pruning cannot
/// remove files while they are packed.
fn stage(src: &Path, dst: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dst);
    std::fs::create_dir_all(dst).map_err(|e| WorkerError::io(format!("creating {}", dst.display()), e))?;
    let entries = std::fs::read_dir(src).map_err(|e| WorkerError::io(format!("listing {}", src.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| WorkerError::io(format!("listing {}", src.display()), e))?;
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let to = dst.join(e.file_name());
        if std::fs::hard_link(e.path(), &to).is_err() {
            std::fs::copy(e.path(), &to)
                .map_err(|err| WorkerError::io(format!("copying {}", e.path().display()), err))?;
        }
    }
    Ok(())
}

/// Drops member `i` from the child; true when none is left.
fn drop_member(members: &mut [Member], i: usize, control: &mpsc::UnboundedSender<String>) -> bool {
    if !members[i].dropped {
        members[i].dropped = true;
        members[i].stop.cancel();
        tracing::warn!(job = members[i].a.job_id, attempt = members[i].a.attempt, "attempt stopped");
        let _ = control.send(format!("{{\"drop\":{i}}}"));
    }
    members.iter().all(|m| m.dropped)
}

/// What a CPU attempt of these jobs asks of the worker's cores: the `threads` a job fixes, and
/// the threads an elastic one can use.
pub fn cpu_demand(assignments: &[pb::Assignment], cores: usize) -> (Option<i32>, i32) {
    let mut fixed = None;
    let mut wanted = 1;
    for a in assignments {
        if let Ok(cfg) = JobConfig::from_toml(&a.config_toml, "assignment") {
            fixed = fixed.or(cfg.threads);
            let n_ctx = cfg.model.n_ctx.max(1) as u64;
            let micro_tokens = cfg.train.micro_batch.map_or(cfg.train.batch_tokens, |s| s.saturating_mul(n_ctx));
            let d = cfg.model.d_model.max(1) as u64;
            wanted = crate::cpu::wanted_threads(micro_tokens, d, assignments.len() as u64, cores);
        }
    }
    (fixed, wanted)
}

/// Runs the child to its end, filling each member's final event (none for dropped members, and
/// none when shutdown killed the child before it checkpointed: the leases then expire).
async fn run_child(
    client: Client,
    env: &Env,
    slot: &str,
    members: &mut [Member],
    share: Option<(CpuShare, i32)>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let began = Instant::now();
    // Stopping every member stops the preparation too.
    let all_stopped = CancellationToken::new();
    {
        let (stops, all) = (members.iter().map(|m| m.stop.clone()).collect::<Vec<_>>(), all_stopped.clone());
        tokio::spawn(async move {
            for s in stops {
                s.cancelled().await;
            }
            all.cancel();
        });
    }
    let sha = members[0].a.dataset_sha256.clone();
    let Some(data) = ensure_dataset(&client, env, &sha, &all_stopped).await? else { return Ok(()) };
    let mut cmd = tokio::process::Command::new(&env.trainer);
    cmd.arg("train");
    let mut fixed_threads = None;
    for m in members.iter() {
        let (path, cfg) = write_config(m, &data)?;
        fixed_threads = fixed_threads.or(cfg.threads);
        cmd.arg("--config").arg(path);
    }
    let mut dl = client.clone();
    for m in members.iter() {
        if m.a.resume_step > 0 {
            let resume = m.dir.join("resume");
            download_checkpoint(&mut dl, m.a.job_id, m.a.resume_step, &resume).await?;
            cmd.arg("--resume").arg(&resume);
        } else if members.len() > 1 {
            cmd.arg("--resume").arg("none");
        }
    }
    // CPU attempts share the worker's cores; an elastic one hears of a new share on stdin.
    if let Some((_, threads)) = &share
        && fixed_threads.is_none()
    {
        cmd.arg("--threads").arg(threads.to_string());
    }
    cmd.arg("--device").arg(slot).arg("--control").arg("stdin");
    let stderr = std::fs::File::create(members[0].dir.join("stderr.log"))
        .map_err(|e| WorkerError::io("creating stderr.log", e))?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::from(stderr)).stdin(Stdio::piped()).kill_on_drop(true);
    let prepared = began.elapsed().as_secs_f64();
    let mut child = cmd.spawn().map_err(|e| WorkerError::io(format!("starting {}", env.trainer.display()), e))?;
    let jobs: Vec<u64> = members.iter().map(|m| m.a.job_id).collect();
    tracing::info!(?jobs, attempt = members[0].a.attempt, pid = child.id(), prepared_s = prepared, "attempt started");

    // The control channel: lines to the child's stdin, in order.
    let (control, mut control_rx) = mpsc::unbounded_channel::<String>();
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            while let Some(line) = control_rx.recv().await {
                if stdin.write_all(format!("{line}\n").as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
        });
    }
    if let Some((s, started)) = &share
        && fixed_threads.is_none()
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<i32>();
        let lines = control.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let _ = lines.send(format!("{{\"threads\":{n}}}"));
            }
        });
        s.attach(tx, *started);
    }
    // Fencing, member by member.
    let (fence_tx, mut fence_rx) = mpsc::unbounded_channel::<usize>();
    for (i, m) in members.iter().enumerate() {
        let (stop, tx) = (m.stop.clone(), fence_tx.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            let _ = tx.send(i);
        });
    }

    let stdout = child.stdout.take().ok_or_else(|| WorkerError::Corrupt("child has no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut grace: Option<tokio::time::Instant> = None;
    let mut first_event = None;
    loop {
        let line = tokio::select! {
            Some(i) = fence_rx.recv() => {
                if drop_member(members, i, &control) {
                    let _ = child.kill().await;
                    return Ok(());
                }
                continue;
            }
            _ = shutdown.cancelled(), if grace.is_none() => {
                if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                }
                tracing::info!(?jobs, "asked the trainer to checkpoint and stop");
                grace = Some(tokio::time::Instant::now() + GRACE);
                continue;
            }
            _ = tokio::time::sleep_until(grace.unwrap_or_else(tokio::time::Instant::now)), if grace.is_some() => {
                let _ = child.kill().await;
                tracing::warn!(?jobs, "the trainer did not stop within {GRACE:?}; killed");
                return Ok(());
            }
            l = lines.next_line() => l.map_err(|e| WorkerError::io("reading the trainer's stdout", e))?,
        };
        let Some(line) = line else { break };
        let Ok(MemberEvent { member: i, event }) = serde_json::from_str::<MemberEvent>(&line) else {
            tracing::warn!(?jobs, "ignoring a non-event line from the trainer: {line}");
            continue;
        };
        let Some(m) = members.get_mut(i) else {
            tracing::warn!(?jobs, member = i, "ignoring an event of an unknown member");
            continue;
        };
        if m.dropped {
            continue;
        }
        first_event.get_or_insert_with(|| began.elapsed().as_secs_f64());
        match event {
            Event::Metrics(p) => {
                m.outbox
                    .send(pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Metrics(pb::MetricPoint::from(&p))) });
            }
            Event::Checkpoint { step, path, .. } => {
                if !upload(&client, env, m, step, Path::new(&path)).await? && drop_member(members, i, &control) {
                    let _ = child.kill().await;
                    return Ok(());
                }
            }
            Event::Finished { step, reason, .. } => {
                let reason =
                    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                m.last = Some(pb::AttemptEvent {
                    kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished { step, reason })),
                });
            }
            Event::Failed { kind, message, .. } => m.last = Some(failed(kind.into(), message)),
            Event::Preempted { step } => {
                m.last = Some(pb::AttemptEvent {
                    kind: Some(pb::attempt_event::Kind::Released(pb::AttemptReleased { step })),
                });
            }
            Event::Started(info) => tracing::debug!(job = m.a.job_id, device = %info.device, "trainer started"),
            Event::Profile(p) => {
                let phases: Vec<String> = p.phases().iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
                tracing::info!(
                    job = m.a.job_id,
                    steps = p.steps,
                    prepared_s = prepared,
                    first_event_s = first_event.unwrap_or_default(),
                    "attempt profile: {}",
                    phases.join(", ")
                );
            }
        }
    }
    let status = child.wait().await.map_err(|e| WorkerError::io("waiting for the trainer", e))?;
    if grace.is_some() && members.iter().all(|m| m.last.is_none()) {
        return Ok(()); // killed during shutdown before it checkpointed: the leases expire and requeue
    }
    let tail = || {
        let text = std::fs::read_to_string(members[0].dir.join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    let message = format!("ladder-train exited with {status} without a final event: {}", tail());
    for m in members.iter_mut().filter(|m| !m.dropped && m.last.is_none()) {
        m.last = Some(failed(pb::FailureKind::Crashed, message.clone()));
    }
    Ok(())
}

/// Uploads member `m`'s checkpoint at `step` once every earlier point is durable. Returns false
/// when the coordinator says the attempt is no longer current.
async fn upload(client: &Client, env: &Env, m: &mut Member, step: u64, path: &Path) -> Result<bool> {
    if !m.outbox.flush().await {
        return Ok(false);
    }
    let staged = m.dir.join("upload");
    stage(path, &staged)?;
    let blob = archive::pack(&staged)?;
    let _ = std::fs::remove_dir_all(&staged);
    let header = pb::CheckpointHeader {
        worker_id: env.worker_id.clone(),
        job_id: m.a.job_id,
        attempt: m.a.attempt,
        step,
        total_bytes: blob.len() as u64,
        sha256: hex::encode(Sha256::digest(&blob)),
    };
    let bytes = blob.len() as i64;
    env.stats.backlog_checkpoint_bytes.fetch_add(bytes, Ordering::Relaxed);
    let sent = retry(&m.stop, || {
        let mut c = client.clone();
        let (h, b) = (header.clone(), blob.clone());
        async move { upload_checkpoint(&mut c, h, b).await }
    })
    .await;
    env.stats.backlog_checkpoint_bytes.fetch_sub(bytes, Ordering::Relaxed);
    match sent {
        Ok(Some(_)) => tracing::info!(job = m.a.job_id, step, "checkpoint uploaded"),
        Ok(None) => {}
        Err(WorkerError::Rpc(s)) if s.code() == Code::FailedPrecondition => return Ok(false),
        Err(e) => tracing::error!(job = m.a.job_id, step, "checkpoint upload failed: {e}"),
    }
    Ok(true)
}
