//! One attempt: fetch the dataset and resume checkpoint, run `ladder-train` as a child, forward
//! its events in batches (buffered and retried while the coordinator is away), upload its
//! checkpoints, and report how it ended. A fenced (stale) attempt is killed and reports nothing more.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ladder_core::events::Event;
use ladder_core::job::JobConfig;
use ladder_proto::pb;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::archive;
use crate::error::{Result, WorkerError};

pub type Client = WorkerServiceClient<ladder_proto::auth::AuthChannel>;

const CHUNK: usize = 1 << 20;

/// Where and how attempts run.
#[derive(Debug, Clone)]
pub struct Env {
    pub worker_id: String,
    pub work_dir: PathBuf,
    pub trainer: PathBuf,
    pub stats: Arc<WorkerStats>,
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

/// An attempt's event queue; what is queued counts in the upload backlog until sent.
pub struct Outbox {
    tx: mpsc::UnboundedSender<pb::AttemptEvent>,
    stats: Arc<WorkerStats>,
}

impl Outbox {
    fn send(&self, e: pb::AttemptEvent) {
        if self.tx.send(e).is_ok() {
            self.stats.backlog_events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Errors worth retrying: the coordinator is away or restarting.
pub fn transient(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled | Code::DeadlineExceeded)
}

/// Retries `f` with backoff while the coordinator is unreachable, until `stop`.
pub async fn retry<T, F, Fut>(stop: &CancellationToken, mut f: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(s) if transient(&s) => {
                tracing::debug!("coordinator unavailable ({}); retrying in {delay:?}", s.message());
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(s) => return Err(s.into()),
        }
    }
}

async fn fetch_blob(client: &mut Client, sha: &str, file: &str) -> Result<Vec<u8>, tonic::Status> {
    let req = pb::FetchDatasetRequest { sha256: sha.to_string(), file: file.to_string() };
    let mut stream = client.fetch_dataset(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(c) = stream.next().await {
        out.extend_from_slice(&c?.data);
    }
    Ok(out)
}

/// The dataset folder for `sha`, fetched once and verified by content hash.
pub async fn ensure_dataset(
    client: &Client,
    env: &Env,
    sha: &str,
    stop: &CancellationToken,
) -> Result<Option<PathBuf>> {
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(WorkerError::Corrupt(format!("dataset hash {sha:?} is not a sha256")));
    }
    let dir = env.work_dir.join("datasets").join(sha);
    if dir.join(".complete").exists() {
        return Ok(Some(dir));
    }
    let mut parts = Vec::new();
    for file in ["train", "val", "meta"] {
        let c = client.clone();
        let Some(bytes) = retry(stop, || {
            let mut c = c.clone();
            async move { fetch_blob(&mut c, sha, file).await }
        })
        .await?
        else {
            return Ok(None);
        };
        parts.push(bytes);
    }
    let mut h = Sha256::new();
    h.update(&parts[0]);
    h.update(&parts[1]);
    if hex::encode(h.finalize()) != sha {
        return Err(WorkerError::Corrupt(format!("dataset {sha}: fetched bytes do not match their hash")));
    }
    let tmp = env.work_dir.join("datasets").join(format!(".{sha}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| WorkerError::io(format!("creating {}", tmp.display()), e))?;
    let write =
        |name: &str, b: &[u8]| std::fs::write(tmp.join(name), b).map_err(|e| WorkerError::io(name.to_string(), e));
    write("train.bin", &parts[0])?;
    write("val.bin", &parts[1])?;
    if !parts[2].is_empty() {
        write("meta.json", &parts[2])?;
    }
    write(".complete", b"")?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| WorkerError::io(format!("renaming to {}", dir.display()), e))?;
    Ok(Some(dir))
}

async fn download_checkpoint(client: &mut Client, job_id: u64, step: u64, into: &Path) -> Result<(), WorkerError> {
    let mut stream = client.download_checkpoint(pb::FetchCheckpointRequest { job_id, step }).await?.into_inner();
    let (mut blob, mut sha) = (Vec::new(), String::new());
    while let Some(c) = stream.next().await {
        let c = c?;
        sha = c.sha256;
        blob.extend_from_slice(&c.data);
    }
    if hex::encode(Sha256::digest(&blob)) != sha {
        return Err(WorkerError::Corrupt(format!("checkpoint of job {job_id} step {step}: sha256 mismatch")));
    }
    let _ = std::fs::remove_dir_all(into);
    archive::unpack(&blob, into)
}

async fn upload_checkpoint(
    client: &mut Client,
    h: pb::CheckpointHeader,
    blob: Vec<u8>,
) -> Result<pb::CheckpointInfo, tonic::Status> {
    let mut msgs = vec![pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) }];
    for c in blob.chunks(CHUNK) {
        msgs.push(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(c.to_vec())) });
    }
    Ok(client.upload_checkpoint(tokio_stream::iter(msgs)).await?.into_inner())
}

fn failed(kind: pb::FailureKind, message: String) -> pb::AttemptEvent {
    pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Failed(pb::AttemptFailed { kind: kind as i32, message })) }
}

/// Sends batches of events in order; stops (and cancels the attempt) once fenced.
async fn reporter(
    client: Client,
    (worker_id, job_id, attempt): (String, u64, u32),
    mut rx: mpsc::UnboundedReceiver<pb::AttemptEvent>,
    fenced: CancellationToken,
    stats: Arc<WorkerStats>,
) {
    let never = CancellationToken::new();
    while let Some(first) = rx.recv().await {
        let mut events = vec![first];
        while events.len() < 512 {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(_) => break,
            }
        }
        let batch = events.len() as i64;
        let req = pb::ReportEventsRequest { worker_id: worker_id.clone(), job_id, attempt, events };
        let sent = retry(&never, || {
            let mut c = client.clone();
            let r = req.clone();
            async move { c.report_events(r).await }
        })
        .await;
        stats.backlog_events.fetch_sub(batch, Ordering::Relaxed);
        match sent {
            Ok(_) => {}
            Err(WorkerError::Rpc(s)) if s.code() == Code::FailedPrecondition => {
                tracing::warn!(job = job_id, attempt, "attempt fenced by the coordinator: {}", s.message());
                fenced.cancel();
                return;
            }
            Err(e) => tracing::error!(job = job_id, attempt, "events refused: {e}"),
        }
    }
}

/// How long a trainer may take to checkpoint after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(60);

/// Runs one assignment to its end. `stop` (fencing: the coordinator says the attempt is no
/// longer current) kills the child and reports nothing more. `shutdown` sends the child SIGTERM:
/// it checkpoints, the checkpoint is uploaded, and the lease is released.
pub async fn run(
    client: Client,
    env: Env,
    slot: String,
    a: pb::Assignment,
    stop: CancellationToken,
    shutdown: CancellationToken,
) -> Result<()> {
    let dir = env.work_dir.join("attempts").join(format!("job-{}-a{}", a.job_id, a.attempt));
    std::fs::create_dir_all(&dir).map_err(|e| WorkerError::io(format!("creating {}", dir.display()), e))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Outbox { tx, stats: env.stats.clone() };
    let ids = (env.worker_id.clone(), a.job_id, a.attempt);
    let reporting = tokio::spawn(reporter(client.clone(), ids, rx, stop.clone(), env.stats.clone()));
    env.stats.children.fetch_add(1, Ordering::Relaxed);
    let outcome = run_child(client.clone(), &env, &slot, &a, &dir, &stop, &shutdown, &tx).await;
    env.stats.children.fetch_sub(1, Ordering::Relaxed);
    match outcome {
        Ok(Some(last)) => {
            tx.send(last);
        }
        Ok(None) => {} // stopped: report nothing
        Err(e) => {
            tracing::error!(job = a.job_id, attempt = a.attempt, "attempt could not run: {e}");
            let kind = if matches!(e, WorkerError::Domain(_)) {
                pb::FailureKind::InvalidConfig
            } else {
                pb::FailureKind::Crashed
            };
            tx.send(failed(kind, format!("worker {}: {e}", env.worker_id)));
        }
    }
    drop(tx);
    let _ = reporting.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Returns the final event to report, or None when stopped.
#[allow(clippy::too_many_arguments)]
async fn run_child(
    mut client: Client,
    env: &Env,
    slot: &str,
    a: &pb::Assignment,
    dir: &Path,
    stop: &CancellationToken,
    shutdown: &CancellationToken,
    tx: &Outbox,
) -> Result<Option<pb::AttemptEvent>> {
    let Some(data) = ensure_dataset(&client, env, &a.dataset_sha256, stop).await? else { return Ok(None) };
    let mut cfg = JobConfig::from_toml(&a.config_toml, "assignment")?;
    cfg.data.dir = data;
    cfg.checkpoint.dir = dir.join("checkpoints");
    let config_path = dir.join("job.toml");
    std::fs::write(&config_path, cfg.to_toml()).map_err(|e| WorkerError::io("writing job.toml", e))?;

    let mut cmd = tokio::process::Command::new(&env.trainer);
    cmd.arg("train").arg("--config").arg(&config_path).arg("--device").arg(slot);
    if a.resume_step > 0 {
        let resume = dir.join("resume");
        download_checkpoint(&mut client, a.job_id, a.resume_step, &resume).await?;
        cmd.arg("--resume").arg(&resume);
    }
    let stderr =
        std::fs::File::create(dir.join("stderr.log")).map_err(|e| WorkerError::io("creating stderr.log", e))?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::from(stderr)).stdin(Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| WorkerError::io(format!("starting {}", env.trainer.display()), e))?;
    tracing::info!(
        job = a.job_id,
        attempt = a.attempt,
        pid = child.id(),
        resume_step = a.resume_step,
        "attempt started"
    );
    let stdout = child.stdout.take().ok_or_else(|| WorkerError::Corrupt("child has no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut last = None;
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => {
                let _ = child.kill().await;
                tracing::warn!(job = a.job_id, attempt = a.attempt, "attempt stopped");
                return Ok(None);
            }
            _ = shutdown.cancelled(), if grace.is_none() => {
                if let Some(pid) = child.id() {
                    // SAFETY: plain kill(2) on our own child's pid.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
                tracing::info!(job = a.job_id, attempt = a.attempt, "asked the trainer to checkpoint and stop");
                grace = Some(tokio::time::Instant::now() + GRACE);
                continue;
            }
            _ = tokio::time::sleep_until(grace.unwrap_or_else(tokio::time::Instant::now)), if grace.is_some() => {
                let _ = child.kill().await;
                tracing::warn!(job = a.job_id, "the trainer did not stop within {GRACE:?}; killed");
                return Ok(None);
            }
            l = lines.next_line() => l.map_err(|e| WorkerError::io("reading the trainer's stdout", e))?,
        };
        let Some(line) = line else { break };
        let Ok(ev) = serde_json::from_str::<Event>(&line) else {
            tracing::warn!(job = a.job_id, "ignoring a non-event line from the trainer: {line}");
            continue;
        };
        match ev {
            Event::Metrics(m) => {
                tx.send(pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Metrics(pb::MetricPoint::from(&m))) });
            }
            Event::Checkpoint { step, path, .. } => {
                let blob = archive::pack(Path::new(&path))?;
                let header = pb::CheckpointHeader {
                    worker_id: env.worker_id.clone(),
                    job_id: a.job_id,
                    attempt: a.attempt,
                    step,
                    total_bytes: blob.len() as u64,
                    sha256: hex::encode(Sha256::digest(&blob)),
                };
                let bytes = blob.len() as i64;
                env.stats.backlog_checkpoint_bytes.fetch_add(bytes, Ordering::Relaxed);
                let sent = retry(stop, || {
                    let mut c = client.clone();
                    let (h, b) = (header.clone(), blob.clone());
                    async move { upload_checkpoint(&mut c, h, b).await }
                })
                .await;
                env.stats.backlog_checkpoint_bytes.fetch_sub(bytes, Ordering::Relaxed);
                match sent {
                    Ok(Some(_)) => tracing::info!(job = a.job_id, step, "checkpoint uploaded"),
                    Ok(None) => {}
                    Err(WorkerError::Rpc(s)) if s.code() == Code::FailedPrecondition => {
                        stop.cancel();
                    }
                    Err(e) => tracing::error!(job = a.job_id, step, "checkpoint upload failed: {e}"),
                }
            }
            Event::Finished { step, reason, .. } => {
                let reason =
                    serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                last = Some(pb::AttemptEvent {
                    kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished { step, reason })),
                });
            }
            Event::Failed { kind, message, .. } => last = Some(failed(kind.into(), message)),
            Event::Preempted { step } => {
                last = Some(pb::AttemptEvent {
                    kind: Some(pb::attempt_event::Kind::Released(pb::AttemptReleased { step })),
                });
            }
            Event::Started(info) => tracing::debug!(job = a.job_id, device = %info.device, "trainer started"),
            Event::Profile(p) => {
                let phases: Vec<String> = p.phases().iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
                tracing::info!(job = a.job_id, steps = p.steps, "attempt profile: {}", phases.join(", "));
            }
        }
    }
    let status = child.wait().await.map_err(|e| WorkerError::io("waiting for the trainer", e))?;
    if stop.is_cancelled() || (grace.is_some() && last.is_none()) {
        return Ok(None); // fenced, or killed during shutdown: the lease expires and requeues
    }
    Ok(Some(last.unwrap_or_else(|| {
        let tail = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        let tail: String =
            tail.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        failed(pb::FailureKind::Crashed, format!("ladder-train exited with {status} without a final event: {tail}"))
    })))
}
