//! Carries a store of an older format forward to [`FORMAT_VERSION`], inside the transaction that
//! opens it, so a crash mid-migration leaves the old file as it was.
//!
//! - 1 → 2: the queue is ordered by cost instead of by id;
//! - 2 → 3: an index of the leases each worker holds;
//! - 3 → 4: configs leave the job records for their own table, and an index of open jobs;
//! - 4 → 5: points in the store's own layout ([`crate::codec`]) instead of the wire's protobuf,
//!   configs as JSON instead of TOML, and each job's micro-batch kept on its record.
use ladder_core::job::JobConfig;
use redb::{ReadableTable, WriteTransaction};

use crate::codec::encode_point;
use crate::error::{CoordError, Result};
use crate::lifecycle::index_lease;
use crate::records::{JobRecord, JobState};
use crate::tables::{CURVES, FORMAT_VERSION, JOB_CONFIGS, JOBS, OPEN_JOBS, QUEUE, QUEUE_V1, from_json};

/// Migrates from format `from`.
pub fn migrate(txn: &WriteTransaction, from: u64) -> Result<()> {
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
    tracing::info!("store migrated from format {from} to {FORMAT_VERSION}");
    Ok(())
}

/// Every job record, as written.
fn all_jobs(txn: &WriteTransaction) -> Result<Vec<JobRecord>> {
    let t = txn.open_table(JOBS)?;
    let mut out = Vec::new();
    for r in t.iter()? {
        let (_, v) = r?;
        out.push(from_json(v.value())?);
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
        if let Some(v) = jobs.get(id)? {
            let job: JobRecord = from_json(v.value())?;
            queue.insert((job.rank(), id), ())?;
        }
    }
    drop((queue, jobs));
    txn.delete_table(QUEUE_V1)?;
    Ok(())
}

/// 2 → 3.
fn lease_index(txn: &WriteTransaction) -> Result<()> {
    let held: Vec<JobRecord> = {
        let jobs = txn.open_table(JOBS)?;
        let mut out = Vec::new();
        for row in jobs.iter()? {
            let (_, v) = row?;
            if let Ok(j) = from_json::<JobRecord>(v.value())
                && j.state == JobState::Running
            {
                out.push(j);
            }
        }
        out
    };
    for j in held {
        index_lease(txn, &j)?;
    }
    Ok(())
}

/// 3 → 4: the config (TOML) moves out of the hot record.
fn cold_configs(txn: &WriteTransaction) -> Result<()> {
    for j in all_jobs(txn)? {
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
    for mut j in all_jobs(txn)? {
        let toml = txn.open_table(JOB_CONFIGS)?.get(j.id)?.map(|v| v.value().to_string());
        let Some(toml) = toml else { continue };
        let config = JobConfig::from_toml(&toml, &format!("job {}'s stored config", j.id))
            .map_err(|e| CoordError::Storage(e.to_string()))?;
        txn.open_table(JOB_CONFIGS)?.insert(j.id, serde_json::to_string(&config)?.as_str())?;
        j.micro_seqs = config.micro_seqs();
        j.save(txn)?;
    }
    let mut curves = txn.open_table(CURVES)?;
    let keys: Vec<(u64, u64)> = curves.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
    for k in keys {
        let Some(bytes) = curves.get(k)?.map(|v| v.value().to_vec()) else { continue };
        let point = ladder_proto::convert::points::decode_legacy_point(&bytes)
            .map_err(|e| CoordError::Storage(format!("job {} step {}: {e}", k.0, k.1)))?;
        curves.insert(k, encode_point(&point).as_slice())?;
    }
    Ok(())
}
