//! Carries a store of an older format forward to [`FORMAT_VERSION`], inside the transaction that
//! opens it, so a crash mid-migration leaves the old file as it was.
//!
//! - 1 → 2: the queue is ordered by cost instead of by id;
//! - 2 → 3: an index of the leases each worker holds;
//! - 3 → 4: configs leave the job records for their own table, and an index of open jobs;
//! - 4 → 5: points in the store's own layout ([`crate::codec`]) instead of the wire's protobuf,
//!   configs as JSON instead of TOML, each job's micro-batch and contiguous curve kept on its
//!   record, and the counts of jobs by state;
//! - 5 → 6: the index of branches (empty: no older store has any), jobs' logs; jobs may be
//!   `pending`;
//! - 6 → 7: checkpoint bytes leave redb for files beside it ([`crate::files`]), each record
//!   naming its file; uploads are staged as files. The store is compacted after, so the space
//!   the bytes took goes back to the filesystem.
//! - 7 → 8: points in blocks of 32 steps;
//! - 8 → 9: the sealed targets' locked predictions (a new, empty table: no older sweep has
//!   targets).
//!
//! A migration reads leniently: a record that does not read (one written by a bug, say) is left
//! as it is and logged, never a reason the store does not open.
use ladder_core::job::JobConfig;
use redb::{ReadableTable, WriteTransaction};

use crate::codec::encode_point;
use crate::error::Result;
use crate::files::Files;
use crate::records::{CheckpointRecord, JobRecord, JobState};
use crate::tables::{
    CHECKPOINT_CHUNKS, CHECKPOINT_STAGING, CHECKPOINTS, CURVES, FORMAT_VERSION, JOB_CONFIGS, JOBS, OPEN_JOBS, QUEUE,
    QUEUE_V1, from_json, to_json,
};

/// Migrates from format `from`, writing checkpoint files into `files`.
pub fn migrate(txn: &WriteTransaction, from: u64, files: &Files) -> Result<()> {
    if from < 2 {
        queue_by_cost(txn)?;
    }
    if from < 3 {
        lease_index(txn)?;
    }
    if from < 4 {
        cold_configs(txn)?;
    }
    if from < 5 {
        own_encodings(txn)?;
    }
    if from < 7 {
        checkpoint_files(txn, files)?;
    }
    if from < 8 {
        curve_blocks(txn)?;
    }
    tracing::info!("store migrated from format {from} to {FORMAT_VERSION}");
    Ok(())
}

/// Every job record that reads; the others are logged and left as they are.
fn all_jobs(txn: &WriteTransaction) -> Result<Vec<JobRecord>> {
    let t = txn.open_table(JOBS)?;
    let mut out = Vec::new();
    for r in t.iter()? {
        let (k, v) = r?;
        match JobRecord::decode(k.value(), v.value()) {
            Ok(j) => out.push(j),
            Err(e) => tracing::error!(job = k.value(), "migrating: the record does not read, left as it is: {e}"),
        }
    }
    Ok(out)
}

/// 1 → 2.
fn queue_by_cost(txn: &WriteTransaction) -> Result<()> {
    let ids: Vec<u64> = {
        let old = txn.open_table(QUEUE_V1)?;
        old.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?
    };
    let mut queue = txn.open_table(QUEUE)?;
    let jobs = txn.open_table(JOBS)?;
    for id in ids {
        let Some(v) = jobs.get(id)? else { continue };
        match JobRecord::decode(id, v.value()) {
            Ok(job) => {
                queue.insert((job.rank(), id), ())?;
            }
            Err(e) => tracing::error!(job = id, "migrating the queue: the record does not read: {e}"),
        }
    }
    drop((queue, jobs));
    txn.delete_table(QUEUE_V1)?;
    Ok(())
}

/// 2 → 3.
fn lease_index(txn: &WriteTransaction) -> Result<()> {
    for j in all_jobs(txn)?.iter().filter(|j| j.state == JobState::Running) {
        j.index_lease(txn)?;
    }
    Ok(())
}

/// 3 → 4: the config (TOML) moves out of the hot record.
fn cold_configs(txn: &WriteTransaction) -> Result<()> {
    for mut j in all_jobs(txn)? {
        txn.open_table(JOB_CONFIGS)?.insert(j.id, j.config_toml.as_str())?;
        if !j.state.is_final() {
            txn.open_table(OPEN_JOBS)?.insert((j.sweep_id, j.id), ())?;
        }
        j.save(txn)?;
    }
    Ok(())
}

/// 4 → 5.
fn own_encodings(txn: &WriteTransaction) -> Result<()> {
    reencode_points(txn)?;
    for mut j in all_jobs(txn)? {
        let toml = txn.open_table(JOB_CONFIGS)?.get(j.id)?.map(|v| v.value().to_string());
        if let Some(toml) = toml {
            match JobConfig::from_toml(&toml, &format!("job {}'s stored config", j.id)) {
                Ok(config) => {
                    txn.open_table(JOB_CONFIGS)?.insert(j.id, serde_json::to_string(&config)?.as_str())?;
                    j.micro_seqs = config.micro_seqs();
                }
                Err(e) => tracing::error!(job = j.id, "migrating: the config does not read, left as it is: {e}"),
            }
        }
        j.contiguous = contiguous(txn, j.id)?;
        // Counted afresh: every job enters the counts once.
        j.loaded_state = None;
        j.save(txn)?;
    }
    Ok(())
}

/// Every point from the wire's protobuf to the store's layout; one that does not decode is
/// dropped (it could not be served either) and logged.
fn reencode_points(txn: &WriteTransaction) -> Result<()> {
    let mut curves = txn.open_table(CURVES)?;
    let keys: Vec<(u64, u64)> = curves.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
    for k in keys {
        let Some(bytes) = curves.get(k)?.map(|v| v.value().to_vec()) else { continue };
        match ladder_proto::convert::points::decode_legacy_point(&bytes) {
            Ok(point) => {
                curves.insert(k, encode_point(&point).as_slice())?;
            }
            Err(e) => {
                tracing::error!(job = k.0, step = k.1, "migrating: a stored point does not read, dropped: {e}");
                curves.remove(k)?;
            }
        }
    }
    Ok(())
}

/// Every point from one key per step into blocks of 32 steps ([`crate::curves`]); a point of the
/// wrong size (it could not be served either) is dropped and logged. The old table goes.
fn curve_blocks(txn: &WriteTransaction) -> Result<()> {
    {
        let old = txn.open_table(CURVES)?;
        let mut blocks = crate::curves::Curves::open(txn)?;
        let (mut moved, mut dropped) = (0u64, 0u64);
        for row in old.iter()? {
            let (k, v) = row?;
            let (job, step) = k.value();
            let rec = v.value();
            if rec.len() != crate::codec::POINT_BYTES || crate::curves::step_of(rec) != step {
                tracing::error!(job, step, "migrating: a stored point does not read, dropped");
                dropped += 1;
                continue;
            }
            blocks.put(job, rec, |_| false)?;
            moved += 1;
        }
        blocks.flush()?;
        tracing::info!(moved, dropped, "points moved into blocks of {} steps", crate::curves::BLOCK_STEPS);
    }
    txn.delete_table(CURVES)?;
    Ok(())
}

/// The last step of the hole-free start of a job's curve.
fn contiguous(txn: &WriteTransaction, job_id: u64) -> Result<u64> {
    let t = txn.open_table(CURVES)?;
    let mut last = 0;
    for row in t.range((job_id, 1)..=(job_id, u64::MAX))? {
        let (k, _) = row?;
        if k.value().1 != last + 1 {
            break;
        }
        last += 1;
    }
    Ok(last)
}

/// 6 → 7: each checkpoint's chunks written out as its file, the record naming it; the chunk and
/// staging tables dropped. A checkpoint whose chunks are incomplete is dropped with a warning
/// (it could not have been downloaded whole).
fn checkpoint_files(txn: &WriteTransaction, files: &Files) -> Result<()> {
    use redb::TableHandle;
    let exists = |name: &str| -> Result<bool> { Ok(txn.list_tables()?.any(|h| h.name() == name)) };
    if !exists(CHECKPOINT_CHUNKS.name())? {
        return Ok(());
    }
    let records: Vec<((u64, u64), CheckpointRecord)> = {
        let t = txn.open_table(CHECKPOINTS)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (k, v) = r?;
            match from_json::<CheckpointRecord>(v.value()) {
                Ok(rec) => out.push((k.value(), rec)),
                Err(e) => tracing::error!(key = ?k.value(), "migrating: a checkpoint record does not read: {e}"),
            }
        }
        out
    };
    let (mut moved, mut bytes) = (0usize, 0u64);
    for ((job, step), mut rec) in records {
        let chunks: Option<Vec<Vec<u8>>> = {
            let t = txn.open_table(CHECKPOINT_CHUNKS)?;
            (0..rec.chunks).map(|i| t.get((job, step, i)).ok().flatten().map(|v| v.value().to_vec())).collect()
        };
        let Some(chunks) = chunks.filter(|c| c.iter().map(|c| c.len() as u64).sum::<u64>() == rec.bytes) else {
            tracing::warn!(job, step, "migrating: the checkpoint's chunks are incomplete; dropped");
            txn.open_table(CHECKPOINTS)?.remove((job, step))?;
            continue;
        };
        let name = files.name(job, step, rec.attempt);
        files.write(&name, chunks)?;
        rec.file = name;
        txn.open_table(CHECKPOINTS)?.insert((job, step), to_json(&rec)?.as_slice())?;
        moved += 1;
        bytes += rec.bytes;
    }
    txn.delete_table(CHECKPOINT_CHUNKS)?;
    if exists(CHECKPOINT_STAGING.name())? {
        txn.delete_table(CHECKPOINT_STAGING)?;
    }
    tracing::info!(checkpoints = moved, bytes, "migrating: checkpoints moved to files");
    Ok(())
}
