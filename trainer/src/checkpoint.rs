//! Checkpoints: a folder per step holding `model.safetensors` (loadable by PyTorch),
//! `optimizer.safetensors`, `state.json` and, written last, `MANIFEST.json` with the size and
//! sha256 of every file. A folder appears under its final name only once complete (rename),
//! and loading verifies every byte against the manifest.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Tensor};

use crate::data::{Sampler, write_atomic};
use crate::error::{Result, TrainerError};
use crate::gns::GnsEma;

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "MANIFEST.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.json";

/// Everything besides tensors that resuming needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub format_version: u32,
    /// Fingerprint of the job config that wrote it; a resume must match.
    pub fingerprint: String,
    /// Optimizer steps completed.
    pub step: u64,
    pub tokens: u64,
    /// Data position: the sampler's RNG and windows drawn.
    pub sampler: Sampler,
    pub gns: GnsEma,
    pub adam_step: u64,
    /// Early stopping's memory: the best validation loss so far and evaluations since it.
    #[serde(default)]
    pub best_val: Option<f64>,
    #[serde(default)]
    pub evals_since_best: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    step: u64,
    files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    bytes: u64,
    sha256: String,
}

/// A verified checkpoint, tensors on the CPU.
#[derive(Debug)]
pub struct Loaded {
    pub state: TrainState,
    pub model: Vec<(String, Tensor)>,
    pub optimizer: Vec<(String, Tensor)>,
}

pub fn step_dir(root: &Path, step: u64) -> PathBuf {
    root.join(format!("step-{step:09}"))
}

fn cpu(ts: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>> {
    ts.iter().map(|(n, t)| Ok((n.clone(), t.f_to_device(Device::Cpu)?.f_contiguous()?))).collect()
}

/// Writes a checkpoint under `root`; returns its folder and total size.
pub fn save(
    root: &Path,
    state: &TrainState,
    model: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
) -> Result<(PathBuf, u64)> {
    let final_dir = step_dir(root, state.step);
    let tmp = root.join(format!(".step-{:09}.partial", state.step));
    let io = |what: String| move |e| TrainerError::io(what, e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(format!("removing {}", tmp.display())))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    Tensor::write_safetensors(&cpu(model)?, tmp.join(MODEL_FILE))?;
    Tensor::write_safetensors(&cpu(optimizer)?, tmp.join(OPTIMIZER_FILE))?;
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| TrainerError::Json { context: "encoding state.json".into(), source: e })?;
    write_atomic(&tmp.join(STATE_FILE), &json)?;
    let mut files = Vec::new();
    for name in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
        let path = tmp.join(name);
        let bytes = std::fs::read(&path).map_err(io(format!("reading back {}", path.display())))?;
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(format!("syncing {}", path.display())))?;
        files.push(FileEntry {
            name: name.into(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
    }
    let total = files.iter().map(|f| f.bytes).sum();
    let manifest = Manifest { format_version: FORMAT_VERSION, step: state.step, files };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| TrainerError::Json { context: "encoding manifest".into(), source: e })?;
    write_atomic(&tmp.join(MANIFEST), &json)?;
    // The folder's entries are durable before it takes its final name.
    std::fs::File::open(&tmp).and_then(|d| d.sync_all()).map_err(io(format!("syncing {}", tmp.display())))?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(format!("replacing {}", final_dir.display())))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(format!("renaming to {}", final_dir.display())))?;
    if let Ok(d) = std::fs::File::open(root) {
        let _ = d.sync_all(); // directory entry durability; best effort on filesystems that refuse
    }
    Ok((final_dir, total))
}

/// Loads and verifies the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Loaded> {
    let bad = |m: String| TrainerError::checkpoint(dir, m);
    let manifest_path = dir.join(MANIFEST);
    let text = std::fs::read(&manifest_path)
        .map_err(|e| bad(format!("cannot read {MANIFEST} ({e}): not a complete checkpoint")))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| bad(format!("{MANIFEST} is corrupt: {e}")))?;
    if manifest.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} is not supported (this build reads {FORMAT_VERSION})",
            manifest.format_version
        )));
    }
    for name in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
        let entry = manifest
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| bad(format!("{MANIFEST} does not list {name}")))?;
        let bytes = std::fs::read(dir.join(name)).map_err(|e| bad(format!("cannot read {name}: {e}")))?;
        if bytes.len() as u64 != entry.bytes {
            return Err(bad(format!(
                "{name} has {} bytes, the manifest says {} (truncated?)",
                bytes.len(),
                entry.bytes
            )));
        }
        if hex::encode(Sha256::digest(&bytes)) != entry.sha256 {
            return Err(bad(format!("{name} fails its sha256 check (corrupt)")));
        }
    }
    let state: TrainState = serde_json::from_slice(
        &std::fs::read(dir.join(STATE_FILE)).map_err(|e| bad(format!("cannot read {STATE_FILE}: {e}")))?,
    )
    .map_err(|e| bad(format!("{STATE_FILE} is invalid: {e}")))?;
    if state.step != manifest.step {
        return Err(bad(format!("state.json says step {}, the manifest step {}", state.step, manifest.step)));
    }
    let model = Tensor::read_safetensors(dir.join(MODEL_FILE)).map_err(|e| bad(format!("{MODEL_FILE}: {e}")))?;
    let optimizer =
        Tensor::read_safetensors(dir.join(OPTIMIZER_FILE)).map_err(|e| bad(format!("{OPTIMIZER_FILE}: {e}")))?;
    Ok(Loaded { state, model, optimizer })
}

/// The `step-*` folders under `root`, oldest first (zero-padded names sort by step).
fn step_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(root) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("step-")))
        .collect();
    dirs.sort();
    dirs
}

/// The newest checkpoint under `root` that has a manifest, if any.
pub fn latest(root: &Path) -> Option<PathBuf> {
    step_dirs(root).into_iter().rev().find(|p| p.join(MANIFEST).exists())
}

/// Deletes all but the newest `keep` checkpoints under `root`, never one at a step in `pinned`
/// (a branch point: the worker must still find it there to upload it, however far behind it is).
pub fn prune(root: &Path, keep: usize, pinned: &[u64]) -> Result<()> {
    let step_of = |p: &PathBuf| {
        p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("step-")).and_then(|n| n.parse::<u64>().ok())
    };
    let dirs: Vec<PathBuf> =
        step_dirs(root).into_iter().filter(|d| !step_of(d).is_some_and(|s| pinned.contains(&s))).collect();
    let n = dirs.len().saturating_sub(keep.max(1));
    for d in &dirs[..n] {
        std::fs::remove_dir_all(d).map_err(|e| TrainerError::io(format!("pruning {}", d.display()), e))?;
    }
    Ok(())
}

/// Copies named tensors into the live ones, checking names and shapes.
pub fn restore_into(dir: &Path, what: &str, live: &mut [(String, Tensor)], saved: &[(String, Tensor)]) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for (name, t) in live.iter_mut() {
        let src = saved
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| TrainerError::checkpoint(dir, format!("{what} lacks tensor {name}")))?;
        if src.size() != t.size() {
            return Err(TrainerError::checkpoint(
                dir,
                format!("{what} tensor {name} has shape {:?}, the model needs {:?}", src.size(), t.size()),
            ));
        }
        t.f_copy_(src)?;
    }
    if saved.len() != live.len() {
        return Err(TrainerError::checkpoint(
            dir,
            format!("{what} has {} tensors, expected {}", saved.len(), live.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_every_branch_point() {
        let root = std::env::temp_dir().join(format!("ladder-prune-{}", std::process::id()));
        for step in [100u64, 200, 300, 400, 500] {
            std::fs::create_dir_all(root.join(format!("step-{step:09}"))).unwrap();
        }
        prune(&root, 2, &[200]).unwrap();
        let left: Vec<String> =
            step_dirs(&root).iter().filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from)).collect();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(left, ["step-000000200", "step-000000400", "step-000000500"]);
    }
}
