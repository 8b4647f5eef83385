//! A checkpoint the trainer wrote: staged by hard links at once (before the trainer's pruning
//! can take its files), then packed and uploaded once every point before it is durable.
use std::path::Path;
use std::sync::atomic::Ordering;

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

/// Uploads member `m`'s checkpoint at `step` (staged in `staged`) once every earlier point is
/// durable. Returns false when the coordinator says the attempt is no longer current.
pub(super) async fn upload(env: &Env, m: &mut Member, step: u64, staged: &Path) -> Result<bool> {
    if !m.outbox.flush().await {
        return Ok(false);
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
    match sent {
        Ok(Some(_)) => tracing::info!(job = m.a.job_id, step, "checkpoint uploaded"),
        Ok(None) => {}
        Err(e) if e.is_fenced() => return Ok(false),
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
