//! Workers: registration (the worker id is bound to the credential that registered it), the
//! credential check of every later call, and the listing with each worker's running jobs.
use redb::{ReadableTable, WriteTransaction};

use ladder_core::status::WorkerStatus;

use crate::error::{CoordError, Result};
use crate::records::WorkerRecord;
use crate::tables::{LEASES, Reader, WORKERS, from_json, next_id, to_json};

pub fn register(txn: &WriteTransaction, name: &str, slots: &[String], credential: &str, now: i64) -> Result<String> {
    let id = format!("{name}-{}", next_id(txn, "next_worker_id")?);
    let rec = WorkerRecord {
        id: id.clone(),
        name: name.to_string(),
        slots: slots.to_vec(),
        last_seen_ms: now,
        credential: credential.to_string(),
    };
    txn.open_table(WORKERS)?.insert(id.as_str(), to_json(&rec)?.as_slice())?;
    Ok(id)
}

/// Refuses a call for worker `id` made with another credential than the one it registered with.
/// An unknown id passes (its calls fail fencing on their own).
pub fn check_credential<R: Reader>(r: &R, id: &str, credential: &str) -> Result<()> {
    let t = r.table(WORKERS)?;
    let Some(v) = t.get(id)? else { return Ok(()) };
    let w: WorkerRecord = from_json(v.value())?;
    if w.credential == credential {
        Ok(())
    } else {
        Err(CoordError::Forbidden(format!("worker {id} registered with another credential")))
    }
}

/// Every registered worker and the jobs whose attempts it holds.
pub fn list<R: Reader>(r: &R) -> Result<Vec<WorkerStatus>> {
    let leases = r.table(LEASES)?;
    let mut out = Vec::new();
    for row in r.table(WORKERS)?.iter()? {
        let (k, v) = row?;
        let record: WorkerRecord = match from_json(v.value()) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(worker = k.value(), "a worker record does not read: {e}");
                continue;
            }
        };
        let running_jobs = leases
            .range((record.id.as_str(), 0)..=(record.id.as_str(), u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        out.push(WorkerStatus {
            id: record.id,
            name: record.name,
            slots: record.slots,
            last_seen_ms: record.last_seen_ms,
            running_jobs,
        });
    }
    Ok(out)
}
