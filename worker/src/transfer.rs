//! Moving files between the worker and the coordinator: datasets (fetched once into a folder of
//! their own, verified by content hash before first use) and checkpoints (downloaded and
//! unpacked to resume, packed and uploaded as they are written).
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ladder_core::attempt::BranchSource;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::env::Env;
use crate::error::{Result, WorkerError};
use crate::retry::retry;
use crate::rpc::Rpc;

const CHUNK: usize = 1 << 20;

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
/// Fetches started by this process (each into a temp folder of its own).
static FETCH: AtomicU64 = AtomicU64::new(0);
/// One lock per dataset: one slot fetches or verifies it while the others wait for its folder.
static FETCHING: Mutex<Option<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Mutex::new(None);

/// Dataset fetches this process has started.
pub fn fetches() -> u64 {
    FETCH.load(Ordering::Relaxed)
}

fn lock_of(sha: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut g = FETCHING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    g.get_or_insert_with(HashMap::new).entry(sha.to_string()).or_default().clone()
}

/// sha256 of a dataset folder, off the async runtime (up to 16 GiB is read).
async fn hash_off_runtime(dir: &Path) -> Result<String> {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || hash_folder(&d))
        .await
        .map_err(|e| WorkerError::Corrupt(format!("hashing {}: {e}", dir.display())))?
}

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
/// fails is fetched again). One slot at a time per dataset: the others wait for its folder, so a
/// dataset is fetched once and a folder in use is never replaced.
pub async fn ensure_dataset(env: &Env, sha: &str, stop: &CancellationToken) -> Result<Option<PathBuf>> {
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(WorkerError::Corrupt(format!("dataset hash {sha:?} is not a sha256")));
    }
    let lock = lock_of(sha);
    let _turn = tokio::select! {
        g = lock.lock() => g,
        _ = stop.cancelled() => return Ok(None),
    };
    let root = env.work_dir.join("datasets");
    let dir = root.join(sha);
    if dir.join(".complete").exists() {
        if verified(sha) {
            return Ok(Some(dir));
        }
        if hash_off_runtime(&dir).await.is_ok_and(|h| h == sha) {
            mark_verified(sha);
            return Ok(Some(dir));
        }
        tracing::warn!(dataset = sha, "cached dataset fails its hash; fetching it again");
    }
    fetch_into(env, sha, &root, &dir, stop).await
}

/// Fetches dataset `sha` into a temp folder, verifies it, and renames it to `dir`.
async fn fetch_into(
    env: &Env,
    sha: &str,
    root: &Path,
    dir: &Path,
    stop: &CancellationToken,
) -> Result<Option<PathBuf>> {
    let tmp = root.join(format!(".{sha}.{}.{}.partial", std::process::id(), FETCH.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| WorkerError::io(format!("creating {}", tmp.display()), e))?;
    for (file, name) in [("train", "train.bin"), ("val", "val.bin"), ("meta", "meta.json")] {
        let to = tmp.join(name);
        // A retried file starts over from its first byte.
        let got = retry(stop, || env.rpc.fetch_dataset_file(sha, file, &to)).await?;
        let Some(n) = got else {
            let _ = std::fs::remove_dir_all(&tmp);
            return Ok(None);
        };
        if file == "meta" && n == 0 {
            let _ = std::fs::remove_file(&to);
        }
    }
    let got = hash_off_runtime(&tmp).await?;
    if got != sha {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(WorkerError::Corrupt(format!("dataset {sha}: fetched bytes hash to {got}")));
    }
    std::fs::write(tmp.join(".complete"), b"").map_err(|e| WorkerError::io("writing .complete", e))?;
    sync_dir(&tmp);
    // Only a cached copy that failed its hash is here (this dataset's lock is held): replace it.
    if dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(WorkerError::io(format!("renaming to {}", dir.display()), e));
    }
    sync_dir(root);
    mark_verified(sha);
    Ok(Some(dir.to_path_buf()))
}

/// Downloads checkpoint `step` of `job_id` into the folder `into` (through a tar file checked
/// against its sha256, then unpacked).
/// Downloads the parent checkpoint a branch starts from into `into`, refusing bytes whose
/// sha256 is not the one the assignment names (a branch starts from no other checkpoint).
pub async fn download_branch_source(rpc: &Rpc, src: &BranchSource, into: &Path) -> Result<()> {
    let tar_path = into.with_extension("tar");
    rpc.download_checkpoint(src.job_id, src.step, &tar_path).await?;
    let path = tar_path.clone();
    let got = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut h = Sha256::new();
        std::io::copy(&mut std::fs::File::open(&path)?, &mut h)?;
        Ok(hex::encode(h.finalize()))
    })
    .await
    .map_err(|e| WorkerError::Corrupt(format!("hashing {}: {e}", tar_path.display())))?
    .map_err(|e| WorkerError::io(format!("hashing {}", tar_path.display()), e))?;
    if got != src.sha256 {
        let _ = std::fs::remove_file(&tar_path);
        return Err(WorkerError::Corrupt(format!(
            "the checkpoint of job {} at step {} hashes to {got}, not {} as the branch names",
            src.job_id, src.step, src.sha256
        )));
    }
    let _ = std::fs::remove_dir_all(into);
    let unpacked = crate::archive::unpack(&tar_path, into);
    let _ = std::fs::remove_file(&tar_path);
    unpacked
}

pub async fn download_checkpoint(rpc: &Rpc, job_id: u64, step: u64, into: &Path) -> Result<()> {
    let tar_path = into.with_extension("tar");
    rpc.download_checkpoint(job_id, step, &tar_path).await?;
    let _ = std::fs::remove_dir_all(into);
    let unpacked = crate::archive::unpack(&tar_path, into);
    let _ = std::fs::remove_file(&tar_path);
    unpacked
}
