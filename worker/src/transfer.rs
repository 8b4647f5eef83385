//! Moving bytes between the worker and the coordinator: datasets (fetched once, verified by
//! content hash, cached), checkpoints (downloaded to resume, uploaded as they are written), and
//! the retry policy for calls made while the coordinator may be away.
use std::path::{Path, PathBuf};
use std::time::Duration;

use ladder_proto::pb;
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::archive;
use crate::attempt::{Client, Env};
use crate::error::{Result, WorkerError};

const CHUNK: usize = 1 << 20;

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

pub async fn download_checkpoint(client: &mut Client, job_id: u64, step: u64, into: &Path) -> Result<(), WorkerError> {
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

pub async fn upload_checkpoint(
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
