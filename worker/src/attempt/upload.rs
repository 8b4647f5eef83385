//! A checkpoint the trainer wrote: staged by hard links at once (before the trainer's pruning
//! can take its files), then packed and uploaded once every point before it is durable. One a
//! branch forks from is kept until it is stored: tried again at each later checkpoint and, with
//! backoff, at the attempt's end.
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Member;
use crate::archive;
use crate::env::Env;
use crate::error::{Result, WorkerError};
use crate::retry::retry;
use crate::rpc::CheckpointUpload;

/// Copies a checkpoint folder aside (hard links where possible) so the trainer's pruning cannot
/// remove files while they are packed. Ok(false): the trainer pruned it first (a newer one
/// follows), and nothing is staged.
pub(super) fn stage(src: &Path, dst: &Path) -> Result<bool> {
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

/// What became of an upload.
#[derive(Debug)]
pub(super) enum Uploaded {
    Stored,
    /// The coordinator says the attempt is no longer current.
    Fenced,
    /// It could not be stored (the coordinator refused it, or it never got through).
    Failed(WorkerError),
}

/// How long the branch-point checkpoints whose upload failed are tried again at an attempt's end,
/// before the attempt ends without them (its branches then fail, saying so).
pub(super) const BRANCH_POINT_PATIENCE: Duration = Duration::from_secs(300);

/// Uploads member `m`'s checkpoint at `step` (staged in `staged`) once every earlier point is
/// durable.
pub(super) async fn upload(env: &Env, m: &mut Member, step: u64, staged: &Path) -> Result<Uploaded> {
    if !m.outbox.flush().await {
        return Ok(Uploaded::Fenced);
    }
    let tar = m.dir.join(format!("upload-{step}.tar"));
    let (bytes, sha256) = {
        let (staged, tar) = (staged.to_path_buf(), tar.clone());
        tokio::task::spawn_blocking(move || archive::pack(&staged, &tar))
            .await
            .map_err(|e| WorkerError::Corrupt(format!("packing the checkpoint: {e}")))??
    };
    let header = CheckpointUpload {
        worker_id: env.worker_id.clone(),
        job_id: m.a.job_id,
        attempt: m.a.attempt,
        step,
        bytes,
        sha256,
    };
    let held = i64::try_from(bytes).unwrap_or(i64::MAX);
    env.stats.backlog_checkpoint_bytes.fetch_add(held, Ordering::Relaxed);
    let sent = retry(&m.stop, || env.rpc.upload_checkpoint(&header, &tar)).await;
    env.stats.backlog_checkpoint_bytes.fetch_sub(held, Ordering::Relaxed);
    let _ = std::fs::remove_file(&tar);
    Ok(match sent {
        Ok(Some(_)) => {
            tracing::info!(job = m.a.job_id, step, "checkpoint uploaded");
            Uploaded::Stored
        }
        Ok(None) => Uploaded::Fenced,
        Err(e) if e.is_fenced() => Uploaded::Fenced,
        Err(e) => {
            tracing::error!(job = m.a.job_id, step, "checkpoint upload failed: {e}");
            Uploaded::Failed(e)
        }
    })
}

/// Whether `step` is a point a branch of member `m`'s job forks from: its checkpoint must reach
/// the coordinator, or the branch cannot run.
pub(super) fn branch_point(m: &Member, step: u64) -> bool {
    m.a.config.checkpoint.at.contains(&step)
}

/// Tries the member's pending branch-point uploads again, once each; returns false when fenced.
pub(super) async fn retry_pending(env: &Env, m: &mut Member) -> Result<bool> {
    for (step, staged, _) in std::mem::take(&mut m.pending) {
        match upload(env, m, step, &staged).await? {
            Uploaded::Stored => {
                let _ = std::fs::remove_dir_all(&staged);
            }
            Uploaded::Fenced => return Ok(false),
            Uploaded::Failed(e) => m.pending.push((step, staged, e.to_string())),
        }
    }
    Ok(true)
}

/// At the attempt's end: the pending branch-point uploads, tried again with backoff for up to
/// [`BRANCH_POINT_PATIENCE`]. One that never gets through is logged to the job's log.
pub(super) async fn settle_pending(env: &Env, m: &mut Member) -> Result<()> {
    let deadline = tokio::time::Instant::now() + BRANCH_POINT_PATIENCE;
    let mut delays = crate::retry::backoff();
    while !m.pending.is_empty() && tokio::time::Instant::now() < deadline {
        if !retry_pending(env, m).await? {
            return Ok(());
        }
        if m.pending.is_empty() {
            break;
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(3));
        tokio::select! {
            _ = m.stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
    for (step, _, why) in &m.pending {
        let text = format!(
            "the checkpoint at step {step}, where a branch forks, could not be stored ({why}): its branch cannot run"
        );
        tracing::error!(job = m.a.job_id, step, "{text}");
        m.outbox.send(ladder_core::attempt::AttemptEvent::Log { source: "worker".into(), text, at_ms: now_ms() });
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
