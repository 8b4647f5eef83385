//! Workers: registration (the worker id is bound to the credential that registered it), the
//! credential check of every later call, and the listing with each worker's running jobs.
use redb::{ReadableTable, WriteTransaction};

use ladder_core::job::Slot;
use ladder_core::status::WorkerStatus;

use crate::error::{CoordError, Result};
use crate::records::WorkerRecord;
use crate::tables::{LEASES, Reader, WORKERS, from_json, next_id, to_json};

/// A worker and its slots: each a device and that device's memory in bytes (0: a CPU slot, or
/// unknown).
pub fn register(
    txn: &WriteTransaction,
    name: &str,
    slots: &[(String, u64)],
    credential: &str,
    now: i64,
) -> Result<String> {
    let id = format!("{name}-{}", next_id(txn, "next_worker_id")?);
    let rec = WorkerRecord {
        id: id.clone(),
        name: name.to_string(),
        slots: slots.iter().map(|s| s.0.clone()).collect(),
        last_seen_ms: now,
        credential: credential.to_string(),
        slot_memory: slots.iter().map(|s| s.1).collect(),
    };
    txn.open_table(WORKERS)?.insert(id.as_str(), to_json(&rec)?.as_slice())?;
    Ok(id)
}

/// Refuses a call for worker `id` made with another credential than the one it registered with,
/// and a call for an id no worker registered.
pub fn check_credential<R: Reader>(r: &R, id: &str, credential: &str) -> Result<()> {
    let t = r.table(WORKERS)?;
    let Some(v) = t.get(id)? else {
        return Err(CoordError::NotFound(format!("no worker {id:?} is registered: register first")));
    };
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

/// The slots of the workers heard from since `since_ms`, each with its device memory.
pub fn live_slots<R: Reader>(r: &R, since_ms: i64) -> Result<Vec<(Slot, u64)>> {
    let mut out = Vec::new();
    for row in r.table(WORKERS)?.iter()? {
        let (_, v) = row?;
        let Ok(w) = from_json::<WorkerRecord>(v.value()) else { continue };
        if w.last_seen_ms >= since_ms {
            let memory = w.slot_memory.iter().copied().chain(std::iter::repeat(0));
            // Slots were checked at registration: one that does not read is an older record's.
            out.extend(w.slots.iter().zip(memory).filter_map(|(s, m)| Some((s.parse().ok()?, m))));
        }
    }
    Ok(out)
}
