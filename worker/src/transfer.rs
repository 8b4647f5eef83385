//! Moving bytes between the worker and the coordinator, chunk by chunk through files, never a
//! whole blob in memory: datasets (fetched once into a folder of their own, verified by content
//! hash before first use), checkpoints (downloaded to resume, uploaded as they are written), and
//! the retry policy for calls made while the coordinator may be away.
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use ladder_proto::pb;
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::attempt::{Client, Env};
use crate::error::{Result, WorkerError};

const CHUNK: usize = 1 << 20;

/// Retries of an INTERNAL or UNKNOWN error before it is taken as final.
pub const INTERNAL_RETRIES: usize = 6;

/// The coordinator is away or restarting: retried for as long as it takes.
pub fn unavailable(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded)
}

/// Maybe a passing fault: retried a few times, then final.
fn internal(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Internal | Code::Unknown)
}

/// The delays between retries: 100 ms doubling to 3 s, with jitter.
pub fn backoff() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(3))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Retries `f` while the coordinator is unreachable (until `stop`: then None), and an internal
/// error up to [`INTERNAL_RETRIES`] times; any other error is returned at once.
pub async fn retry<T, F, Fut>(stop: &CancellationToken, mut f: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut delays = backoff();
    let mut internal_left = INTERNAL_RETRIES;
    loop {
        match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(s) if unavailable(&s) || (internal(&s) && internal_left > 0) => {
                if internal(&s) {
                    internal_left -= 1;
                }
                let delay = delays.next().unwrap_or(Duration::from_secs(3));
                tracing::debug!("coordinator: {} ({:?}); retrying in {delay:?}", s.message(), s.code());
                tokio::select! {
                    _ = stop.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            Err(s) => return Err(s.into()),
        }
    }
}

/// Streams one file of a dataset into `to`, returning the bytes written.
async fn fetch_file(client: &mut Client, sha: &str, file: &str, to: &Path) -> Result<u64, WorkerError> {
    let req = pb::FetchDatasetRequest { sha256: sha.to_string(), file: file.to_string() };
    let mut stream = client.fetch_dataset(req).await?.into_inner();
    let mut out = std::fs::File::create(to).map_err(|e| WorkerError::io(format!("creating {}", to.display()), e))?;
    let mut n = 0u64;
    while let Some(c) = stream.next().await {
        let c = c?;
        out.write_all(&c.data).map_err(|e| WorkerError::io(format!("writing {}", to.display()), e))?;
        n += c.data.len() as u64;
    }
    out.sync_all().map_err(|e| WorkerError::io(format!("syncing {}", to.display()), e))?;
    Ok(n)
}

/// sha256 over train.bin then val.bin of a dataset folder.
fn hash_folder(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    for name in ["train.bin", "val.bin"] {
        let path = dir.join(name);
        let mut f =
            std::fs::File::open(&path).map_err(|e| WorkerError::io(format!("opening {}", path.display()), e))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| WorkerError::io(format!("reading {}", path.display()), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all(); // directory entries; best effort where a filesystem refuses
    }
}

/// Datasets this process has checked against their hash (a cache entry is trusted once checked).
static VERIFIED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
static FETCH: AtomicU64 = AtomicU64::new(0);

fn verified(sha: &str) -> bool {
    VERIFIED.lock().ok().and_then(|g| g.as_ref().map(|s| s.contains(sha))).unwrap_or(false)
}

fn mark_verified(sha: &str) {
    if let Ok(mut g) = VERIFIED.lock() {
        g.get_or_insert_with(HashSet::new).insert(sha.to_string());
    }
}

/// The dataset folder for `sha`: fetched into a temp folder of its own, synced and renamed into
/// place, and checked against its hash before its first use by this process (a cached folder that
/// fails is fetched again).
pub async fn ensure_dataset(
    client: &Client,
    env: &Env,
    sha: &str,
    stop: &CancellationToken,
) -> Result<Option<PathBuf>> {
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(WorkerError::Corrupt(format!("dataset hash {sha:?} is not a sha256")));
    }
    let root = env.work_dir.join("datasets");
    let dir = root.join(sha);
    if dir.join(".complete").exists() {
        if verified(sha) {
            return Ok(Some(dir));
        }
        let (d, s) = (dir.clone(), sha.to_string());
        let ok = tokio::task::spawn_blocking(move || hash_folder(&d).map(|h| h == s)).await.unwrap_or(Ok(false));
        if matches!(ok, Ok(true)) {
            mark_verified(sha);
            return Ok(Some(dir));
        }
        tracing::warn!(dataset = sha, "cached dataset fails its hash; fetching it again");
    }
    let tmp = root.join(format!(".{sha}.{}.{}.partial", std::process::id(), FETCH.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| WorkerError::io(format!("creating {}", tmp.display()), e))?;
    for (file, name) in [("train", "train.bin"), ("val", "val.bin"), ("meta", "meta.json")] {
        let c = client.clone();
        let to = tmp.join(name);
        let got = retry(stop, || {
            let mut c = c.clone();
            let to = to.clone();
            async move {
                // A retried file starts over from its first byte.
                fetch_file(&mut c, sha, file, &to).await.map_err(|e| match e {
                    WorkerError::Rpc(s) => s,
                    other => tonic::Status::internal(other.to_string()),
                })
            }
        })
        .await?;
        let Some(n) = got else {
            let _ = std::fs::remove_dir_all(&tmp);
            return Ok(None);
        };
        if file == "meta" && n == 0 {
            let _ = std::fs::remove_file(&to);
        }
    }
    let got = hash_folder(&tmp)?;
    if got != sha {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(WorkerError::Corrupt(format!("dataset {sha}: fetched bytes hash to {got}")));
    }
    std::fs::write(tmp.join(".complete"), b"").map_err(|e| WorkerError::io("writing .complete", e))?;
    sync_dir(&tmp);
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Another slot may have renamed its copy first: either copy is whole and verified.
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dir.join(".complete").exists() {
            return Err(WorkerError::io(format!("renaming to {}", dir.display()), e));
        }
    }
    sync_dir(&root);
    mark_verified(sha);
    Ok(Some(dir))
}

/// Downloads checkpoint `step` of `job_id` into the folder `into`, through a file checked
/// against its sha256.
pub async fn download_checkpoint(client: &mut Client, job_id: u64, step: u64, into: &Path) -> Result<(), WorkerError> {
    let mut stream = client.download_checkpoint(pb::FetchCheckpointRequest { job_id, step }).await?.into_inner();
    let tar_path = into.with_extension("tar");
    let mut out =
        std::fs::File::create(&tar_path).map_err(|e| WorkerError::io(format!("creating {}", tar_path.display()), e))?;
    let (mut h, mut sha) = (Sha256::new(), String::new());
    while let Some(c) = stream.next().await {
        let c = c?;
        sha = c.sha256;
        h.update(&c.data);
        out.write_all(&c.data).map_err(|e| WorkerError::io(format!("writing {}", tar_path.display()), e))?;
    }
    out.sync_all().map_err(|e| WorkerError::io(format!("syncing {}", tar_path.display()), e))?;
    if hex::encode(h.finalize()) != sha {
        let _ = std::fs::remove_file(&tar_path);
        return Err(WorkerError::Corrupt(format!("checkpoint of job {job_id} step {step}: sha256 mismatch")));
    }
    let _ = std::fs::remove_dir_all(into);
    let unpacked = crate::archive::unpack(&tar_path, into);
    let _ = std::fs::remove_file(&tar_path);
    unpacked
}

/// Uploads the packed checkpoint `tar` (of `bytes` bytes, hashed to the header's sha256) in 1 MiB
/// messages read from the file as they are sent.
pub async fn upload_checkpoint(
    client: &mut Client,
    h: pb::CheckpointHeader,
    tar: PathBuf,
) -> Result<pb::CheckpointInfo, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::CheckpointUpload>(4);
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if tx.blocking_send(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) }).is_err() {
            return Ok(());
        }
        let mut f = std::fs::File::open(&tar)?;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let n = f.read(&mut buf[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                return Ok(());
            }
            buf.truncate(filled);
            if tx.blocking_send(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(buf)) }).is_err() {
                return Ok(());
            }
        }
    });
    let out = client.upload_checkpoint(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
    match reader.await {
        Ok(Err(e)) => return Err(tonic::Status::internal(format!("reading the packed checkpoint: {e}"))),
        Err(e) => return Err(tonic::Status::internal(format!("reading the packed checkpoint: {e}"))),
        Ok(Ok(())) => {}
    }
    Ok(out?.into_inner())
}
