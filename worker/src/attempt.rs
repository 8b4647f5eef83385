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
    /// The GPUs' memory, and what running attempts hold of it.
    pub gpu: crate::gpu::GpuPool,
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
        let spill = dir.join("events.spill");
        let (outbox, reporting) = report::start(client.clone(), ids, stop.clone(), env.stats.clone(), spill);
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
/// remove files while they are packed. Ok(false): the trainer pruned it first (a newer one
/// follows), and nothing is staged.
fn stage(src: &Path, dst: &Path) -> Result<bool> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let _ = std::fs::remove_dir_all(dst);
    std::fs::create_dir_all(dst).map_err(|e| WorkerError::io(format!("creating {}", dst.display()), e))?;
    let entries = match std::fs::read_dir(src) {
        Ok(d) => d,
        Err(e) if gone(&e) => return Ok(false),
        Err(e) => return Err(WorkerError::io(format!("listing {}", src.display()), e)),
    };
    for e in entries {
        let e = match e {
            Ok(e) => e,
            Err(e) if gone(&e) => return Ok(false),
            Err(e) => return Err(WorkerError::io(format!("listing {}", src.display()), e)),
        };
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let to = dst.join(e.file_name());
        if std::fs::hard_link(e.path(), &to).is_err() {
            match std::fs::copy(e.path(), &to) {
                Ok(_) => {}
                Err(err) if gone(&err) => return Ok(false),
                Err(err) => return Err(WorkerError::io(format!("copying {}", e.path().display()), err)),
            }
        }
    }
    Ok(true)
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

/// Where member `m` resumes: the newest of its checkpoints (at most its assignment's resume step)
/// that downloads and verifies (`ladder-train verify`), falling back to older ones; None = fresh.
async fn resume_point(
    client: &Client,
    env: &Env,
    m: &Member,
    stop: &CancellationToken,
) -> Result<Option<(u64, PathBuf)>> {
    if m.a.resume_step == 0 {
        return Ok(None);
    }
    let mut steps: Vec<u64> = m.a.checkpoint_steps.iter().copied().filter(|&s| s <= m.a.resume_step).collect();
    if !steps.contains(&m.a.resume_step) {
        steps.push(m.a.resume_step);
    }
    steps.sort_unstable();
    steps.dedup();
    let config = m.dir.join("job.toml");
    for step in steps.into_iter().rev() {
        let dir = m.dir.join(format!("resume-{step}"));
        let got = retry(stop, || {
            let mut c = client.clone();
            let dir = dir.clone();
            async move {
                download_checkpoint(&mut c, m.a.job_id, step, &dir).await.map_err(|e| match e {
                    WorkerError::Rpc(s) => s,
                    other => tonic::Status::data_loss(other.to_string()),
                })
            }
        })
        .await;
        match got {
            Ok(Some(())) => {}
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(job = m.a.job_id, step, "checkpoint does not download ({e}); trying an older one");
                continue;
            }
        }
        let out = tokio::process::Command::new(&env.trainer)
            .arg("verify")
            .arg("--config")
            .arg(&config)
            .arg("--checkpoint")
            .arg(&dir)
            .output()
            .await
            .map_err(|e| WorkerError::io(format!("running {} verify", env.trainer.display()), e))?;
        if out.status.success() {
            return Ok(Some((step, dir)));
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        tracing::warn!(job = m.a.job_id, step, "checkpoint does not verify ({why}); trying an older one");
    }
    tracing::warn!(job = m.a.job_id, "no checkpoint verifies; the attempt starts fresh");
    Ok(None)
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
    let mut resumes = Vec::with_capacity(members.len());
    for m in members.iter() {
        resumes.push(resume_point(&client, env, m, &all_stopped).await?);
    }
    // Fused members move in lockstep: one that cannot resume where the others do starts them
    // all over from the same (earliest) point.
    if members.len() > 1 && resumes.iter().any(|r| r.as_ref().map(|(s, _)| *s) != resumes[0].as_ref().map(|(s, _)| *s))
    {
        tracing::warn!("fused members resume at different steps; all start fresh");
        resumes.iter_mut().for_each(|r| *r = None);
    }
    for (m, r) in members.iter().zip(&resumes) {
        match r {
            Some((_, dir)) => {
                cmd.arg("--resume").arg(dir);
            }
            None if members.len() > 1 => {
                cmd.arg("--resume").arg("none");
            }
            None => {}
        }
        let step = r.as_ref().map_or(0, |(s, _)| *s);
        m.outbox.send(pb::AttemptEvent {
            kind: Some(pb::attempt_event::Kind::Started(pb::AttemptStarted { resumed_from_step: step })),
        });
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
                // Staged (hard links) right away, before the trainer's pruning can take the files.
                let staged = m.dir.join(format!("upload-{step}"));
                if !stage(Path::new(&path), &staged)? {
                    let _ = std::fs::remove_dir_all(&staged);
                    tracing::info!(
                        job = m.a.job_id,
                        step,
                        "checkpoint pruned before it was staged; a newer one follows"
                    );
                    continue;
                }
                let ok = upload(&client, env, m, step, &staged).await;
                let _ = std::fs::remove_dir_all(&staged);
                if !ok? && drop_member(members, i, &control) {
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

/// Uploads member `m`'s checkpoint at `step` (staged in `staged`) once every earlier point is
/// durable. Returns false when the coordinator says the attempt is no longer current.
async fn upload(client: &Client, env: &Env, m: &mut Member, step: u64, staged: &Path) -> Result<bool> {
    if !m.outbox.flush().await {
        return Ok(false);
    }
    let tar = m.dir.join(format!("upload-{step}.tar"));
    let (bytes, sha) = {
        let (staged, tar) = (staged.to_path_buf(), tar.clone());
        tokio::task::spawn_blocking(move || archive::pack(&staged, &tar))
            .await
            .map_err(|e| WorkerError::Corrupt(format!("packing the checkpoint: {e}")))??
    };
    let header = pb::CheckpointHeader {
        worker_id: env.worker_id.clone(),
        job_id: m.a.job_id,
        attempt: m.a.attempt,
        step,
        total_bytes: bytes,
        sha256: sha,
    };
    let held = i64::try_from(bytes).unwrap_or(i64::MAX);
    env.stats.backlog_checkpoint_bytes.fetch_add(held, Ordering::Relaxed);
    let sent = retry(&m.stop, || {
        let mut c = client.clone();
        let (h, t) = (header.clone(), tar.clone());
        async move { upload_checkpoint(&mut c, h, t).await }
    })
    .await;
    env.stats.backlog_checkpoint_bytes.fetch_sub(held, Ordering::Relaxed);
    let _ = std::fs::remove_file(&tar);
    match sent {
        Ok(Some(_)) => tracing::info!(job = m.a.job_id, step, "checkpoint uploaded"),
        Ok(None) => {}
        Err(WorkerError::Rpc(s)) if s.code() == Code::FailedPrecondition => return Ok(false),
        Err(e) => tracing::error!(job = m.a.job_id, step, "checkpoint upload failed: {e}"),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::stage;

    #[test]
    fn a_checkpoint_pruned_before_staging_is_skipped_not_fatal() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("step-000000100");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(src.join("model.safetensors"), b"weights").expect("write");
        let dst = tmp.path().join("upload-100");
        assert!(stage(&src, &dst).expect("stage"));
        assert_eq!(std::fs::read(dst.join("model.safetensors")).expect("staged"), b"weights");
        std::fs::remove_dir_all(&src).expect("prune");
        assert!(!stage(&src, &dst).expect("a pruned checkpoint is no error"));
    }
}
