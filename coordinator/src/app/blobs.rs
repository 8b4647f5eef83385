//! Checkpoints and datasets in the store. A checkpoint's bytes are a file beside the database
//! ([`crate::files`]) that its record names; a dataset's are chunks in redb, staged one chunk per
//! write and moved into place whole by one last operation. Either way no upload is held in memory
//! whole and a half-received one is never visible.
use redb::{ReadableTable, WriteTransaction};

use ladder_core::status::CheckpointInfo;

use super::lifecycle::current;
use crate::error::{CoordError, Result};
use crate::records::{CheckpointRecord, DatasetRecord, JobRecord, StoredCheckpoint};
use crate::tables::{
    CHECKPOINTS, DATASET_CHUNKS, DATASET_NAMES, DATASET_STAGING, DATASETS, DOOMED_FILES, Reader, from_json, to_json,
};

/// What a checkpoint upload is for: (job, attempt, step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointKey {
    pub job_id: u64,
    pub attempt: u32,
    pub step: u64,
}

/// Refuses a checkpoint the job may not take: a stale attempt, or a step past the hole-free
/// start of its curve (a resume from it would leave a hole behind it for good).
pub fn check_checkpoint(job: &JobRecord, worker_id: &str, k: CheckpointKey) -> Result<()> {
    current(job, worker_id, k.attempt)?;
    if k.step > job.contiguous {
        return Err(CoordError::Ahead(format!(
            "checkpoint of job {} at step {} is past its stored curve, whole up to step {}: send the points first",
            k.job_id, k.step, job.contiguous
        )));
    }
    Ok(())
}

/// Makes the uploaded file `file` (already in place) the job's checkpoint at its step. A
/// checkpoint that branches have forked from is immutable: a re-upload of its step leaves it as
/// it is (and the new file goes). Otherwise an older upload of the step is replaced (its file
/// goes). Then the job's retention policy runs. Returns the record kept, the job, and the
/// branches that may run now.
pub fn commit_checkpoint(
    txn: &WriteTransaction,
    worker_id: &str,
    k: CheckpointKey,
    bytes: u64,
    sha256: &str,
    file: &str,
) -> Result<(StoredCheckpoint, JobRecord, Vec<JobRecord>)> {
    let mut job = JobRecord::load(txn, k.job_id)?;
    check_checkpoint(&job, worker_id, k)?;
    let old: Option<CheckpointRecord> =
        txn.open_table(CHECKPOINTS)?.get((k.job_id, k.step))?.map(|v| from_json(v.value())).transpose()?;
    if let Some(old) = old.clone()
        && super::branches::forked_at(txn, k.job_id, k.step)?
    {
        tracing::info!(job = k.job_id, step = k.step, "a branch forked from this checkpoint: the re-upload is dropped");
        doom(txn, file)?;
        let info = CheckpointInfo {
            job_id: k.job_id,
            step: k.step,
            attempt: old.attempt,
            bytes: old.bytes,
            sha256: old.sha256,
            kept: Vec::new(),
        };
        return Ok((StoredCheckpoint { info, file: old.file }, job, Vec::new()));
    }
    if let Some(old) = old {
        doom(txn, &old.file)?;
    }
    let rec = CheckpointRecord { attempt: k.attempt, bytes, sha256: sha256.to_string(), chunks: 0, file: file.into() };
    txn.open_table(CHECKPOINTS)?.insert((k.job_id, k.step), to_json(&rec)?.as_slice())?;
    if k.step > job.checkpoint_step {
        job.checkpoint_step = k.step;
        job.save(txn)?;
    }
    // The branches that fork here may run now.
    let released = super::branches::release(txn, k.job_id, k.step)?;
    super::retention::collect(txn, k.job_id)?;
    let info = CheckpointInfo {
        job_id: k.job_id,
        step: k.step,
        attempt: k.attempt,
        bytes,
        sha256: rec.sha256,
        kept: Vec::new(),
    };
    Ok((StoredCheckpoint { info, file: rec.file }, job, released))
}

/// Lists a checkpoint file for deletion once this commit is durable (see [`crate::files`]).
pub fn doom(txn: &WriteTransaction, file: &str) -> Result<()> {
    if !file.is_empty() {
        txn.open_table(DOOMED_FILES)?.insert(file, ())?;
    }
    Ok(())
}

/// Files listed for deletion, at most `limit`.
pub fn doomed<R: Reader>(r: &R, limit: usize) -> Result<Vec<String>> {
    let t = r.table(DOOMED_FILES)?;
    t.iter()?.take(limit).map(|row| row.map(|(k, _)| k.value().to_string()).map_err(Into::into)).collect()
}

/// Strikes files from the deletion list once they are gone.
pub fn forget_doomed(txn: &WriteTransaction, files: &[String]) -> Result<()> {
    let mut t = txn.open_table(DOOMED_FILES)?;
    for f in files {
        t.remove(f.as_str())?;
    }
    Ok(())
}

/// The checkpoints of a job, oldest first.
pub fn checkpoints<R: Reader>(r: &R, job_id: u64) -> Result<Vec<StoredCheckpoint>> {
    let t = r.table(CHECKPOINTS)?;
    let mut out = Vec::new();
    for row in t.range((job_id, 0)..=(job_id, u64::MAX))? {
        let (k, v) = row?;
        let rec: CheckpointRecord = from_json(v.value())?;
        let info = CheckpointInfo {
            job_id,
            step: k.value().1,
            attempt: rec.attempt,
            bytes: rec.bytes,
            sha256: rec.sha256,
            kept: Vec::new(),
        };
        out.push(StoredCheckpoint { info, file: rec.file });
    }
    Ok(out)
}

/// A checkpoint of a job; `step` 0 = the newest.
pub fn checkpoint<R: Reader>(r: &R, job_id: u64, step: u64) -> Result<StoredCheckpoint> {
    let all = checkpoints(r, job_id)?;
    if step == 0 { all.last().cloned() } else { all.into_iter().find(|c| c.info.step == step) }.ok_or_else(|| {
        let deleted = JobRecord::load(r, job_id).map_or(0, |j| j.checkpoints_deleted);
        let why = if deleted > 0 {
            format!(" (its sweep's retention policy has deleted {deleted} of its checkpoints: `ladder checkpoints {job_id}` lists those kept)")
        } else {
            String::new()
        };
        CoordError::NotFound(format!("checkpoint of job {job_id} at step {step}{why}"))
    })
}

/// Stages chunk `index` of `file` (0 train, 1 val) of dataset upload `upload`.
pub fn stage_dataset_chunk(txn: &WriteTransaction, upload: u64, file: u8, index: u32, data: &[u8]) -> Result<()> {
    txn.open_table(DATASET_STAGING)?.insert((upload, file, index), data)?;
    Ok(())
}

/// Makes a staged dataset upload the dataset `rec` (stored once by content hash; the name points
/// at its newest content).
pub fn commit_dataset(txn: &WriteTransaction, upload: u64, rec: &DatasetRecord) -> Result<()> {
    let exists = txn.open_table(DATASETS)?.get(rec.sha256.as_str())?.is_some();
    let mut staging = txn.open_table(DATASET_STAGING)?;
    {
        let mut chunks = txn.open_table(DATASET_CHUNKS)?;
        for (file, n) in [(0u8, rec.chunks[0]), (1u8, rec.chunks[1])] {
            for i in 0..n {
                let data = staging.remove((upload, file, i))?.ok_or_else(|| {
                    CoordError::storage(format!("dataset {:?}: chunk {i} of file {file} was not staged", rec.name))
                })?;
                if !exists {
                    chunks.insert((rec.sha256.as_str(), file, i), data.value())?;
                }
            }
        }
    }
    drop(staging);
    if !exists {
        txn.open_table(DATASETS)?.insert(rec.sha256.as_str(), to_json(rec)?.as_slice())?;
    }
    txn.open_table(DATASET_NAMES)?.insert(rec.name.as_str(), rec.sha256.as_str())?;
    Ok(())
}

/// Drops a dataset upload that will not finish.
pub fn abandon_dataset(txn: &WriteTransaction, upload: u64) -> Result<()> {
    let mut t = txn.open_table(DATASET_STAGING)?;
    let keys: Vec<(u64, u8, u32)> = t
        .range((upload, 0, 0)..=(upload, u8::MAX, u32::MAX))?
        .map(|r| r.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    for k in keys {
        t.remove(k)?;
    }
    Ok(())
}

pub fn dataset_by_name<R: Reader>(r: &R, name: &str) -> Result<Option<DatasetRecord>> {
    let names = r.table(DATASET_NAMES)?;
    let Some(sha) = names.get(name)?.map(|v| v.value().to_string()) else { return Ok(None) };
    dataset_by_sha(r, &sha)
}

pub fn dataset_by_sha<R: Reader>(r: &R, sha: &str) -> Result<Option<DatasetRecord>> {
    let t = r.table(DATASETS)?;
    t.get(sha)?.map(|v| from_json(v.value())).transpose()
}

pub fn list_datasets<R: Reader>(r: &R) -> Result<Vec<DatasetRecord>> {
    let t = r.table(DATASETS)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        match from_json(v.value()) {
            Ok(d) => out.push(d),
            Err(e) => tracing::error!(sha = k.value(), "a dataset record does not read: {e}"),
        }
    }
    Ok(out)
}

/// Chunk `index` of `file` (0 train, 1 val) of a stored dataset.
pub fn dataset_chunk<R: Reader>(r: &R, sha: &str, file: u8, index: u32) -> Result<Vec<u8>> {
    let t = r.table(DATASET_CHUNKS)?;
    let v = t
        .get((sha, file, index))?
        .ok_or_else(|| CoordError::storage(format!("dataset {sha}: chunk {index} of file {file} is missing")))?;
    Ok(v.value().to_vec())
}

/// After a restart: drops every dataset upload the previous process left staged (its streams
/// died with it). Returns the chunks dropped.
pub fn clear_abandoned(txn: &WriteTransaction) -> Result<usize> {
    let mut t = txn.open_table(DATASET_STAGING)?;
    let keys: Vec<(u64, u8, u32)> = t.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
    for k in &keys {
        t.remove(*k)?;
    }
    Ok(keys.len())
}

/// Every checkpoint file a record names.
pub fn named_files<R: Reader>(r: &R) -> Result<std::collections::HashSet<String>> {
    let t = r.table(CHECKPOINTS)?;
    let mut out = std::collections::HashSet::new();
    for row in t.iter()? {
        let (_, v) = row?;
        let rec: CheckpointRecord = from_json(v.value())?;
        out.insert(rec.file);
    }
    Ok(out)
}

/// Where a branch with no checkpoint of its own starts: its parent's checkpoint, by hash.
pub fn branch_source<R: Reader>(r: &R, job: &JobRecord) -> Result<Option<ladder_core::attempt::BranchSource>> {
    let Some(b) = job.branch else { return Ok(None) };
    if job.checkpoint_step > b.step {
        return Ok(None);
    }
    let c = checkpoint(r, b.parent, b.step)?;
    Ok(Some(ladder_core::attempt::BranchSource { job_id: b.parent, step: b.step, sha256: c.info.sha256 }))
}
