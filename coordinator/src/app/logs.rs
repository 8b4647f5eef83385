//! Each job's log: its trainers' stderr and its workers' events, line by line, as attempts
//! report them (fenced like every other event). The newest lines stay: a job keeps at most
//! [`MAX_LINES`] lines and [`JOB_BYTES`] bytes, a sweep [`SWEEP_BYTES`] over all its jobs (past
//! it, the job that logs gives up its own oldest lines, down to [`FLOOR_LINES`]). Bytes are
//! counted on the job's record and in [`crate::tables::SWEEP_LOG_BYTES`].
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::records::JobRecord;
use crate::tables::{LOGS, Reader, SWEEP_LOG_BYTES, from_json, to_json};

/// Lines kept per job; older ones go as new ones arrive.
pub const MAX_LINES: u64 = 10_000;
/// Bytes of log kept per job.
pub const JOB_BYTES: u64 = 1 << 20;
/// Bytes of log kept per sweep, over all its jobs.
pub const SWEEP_BYTES: u64 = 256 << 20;
/// Lines a job keeps however full its sweep's log is.
pub const FLOOR_LINES: u64 = 200;
/// Lines a read returns at most.
pub const PAGE: usize = 5_000;

/// One stored line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub attempt: u32,
    pub at_ms: i64,
    pub source: String,
    pub text: String,
}

/// Appends a line of `attempt` to `job`'s log, then trims the job's oldest lines to its caps
/// and its sweep's (the job's record counts its bytes; the caller saves it).
pub fn append(
    txn: &WriteTransaction,
    job: &mut JobRecord,
    attempt: u32,
    source: &str,
    text: &str,
    at_ms: i64,
) -> Result<()> {
    let mut t = txn.open_table(LOGS)?;
    let range = (job.id, 0)..=(job.id, u64::MAX);
    let last = t.range(range.clone())?.next_back().transpose()?.map(|(k, _)| k.value().1);
    let seq = last.map_or(1, |s| s + 1);
    let line = LogLine { seq, attempt, at_ms, source: source.to_string(), text: text.to_string() };
    let bytes = to_json(&line)?;
    t.insert((job.id, seq), bytes.as_slice())?;
    let added = bytes.len() as u64;
    job.log_bytes += added;
    let mut sweeps = txn.open_table(SWEEP_LOG_BYTES)?;
    let mut sweep = sweeps.get(job.sweep_id)?.map_or(0, |v| v.value()) + added;
    // The oldest lines go while the job or its sweep is over a cap.
    let first = t.range(range.clone())?.next().transpose()?.map_or(seq, |(k, _)| k.value().1);
    let mut lines = seq - first + 1;
    let mut cut = first;
    while cut < seq && (lines > MAX_LINES || job.log_bytes > JOB_BYTES || (sweep > SWEEP_BYTES && lines > FLOOR_LINES))
    {
        if let Some(v) = t.remove((job.id, cut))? {
            let n = v.value().len() as u64;
            job.log_bytes = job.log_bytes.saturating_sub(n);
            sweep = sweep.saturating_sub(n);
            lines -= 1;
        }
        cut += 1;
    }
    sweeps.insert(job.sweep_id, sweep)?;
    Ok(())
}

/// Lines of job `job_id` after `after_seq`, oldest first, at most [`PAGE`].
pub fn read<R: Reader>(r: &R, job_id: u64, after_seq: u64) -> Result<Vec<LogLine>> {
    let t = r.table(LOGS)?;
    let mut out = Vec::new();
    for row in t.range((job_id, after_seq.saturating_add(1))..=(job_id, u64::MAX))?.take(PAGE) {
        let (_, v) = row?;
        if let Ok(l) = from_json::<LogLine>(v.value()) {
            out.push(l);
        }
    }
    Ok(out)
}

/// The newest `n` lines of job `job_id`, newest first.
pub fn newest<R: Reader>(r: &R, job_id: u64, n: usize) -> Result<Vec<LogLine>> {
    let t = r.table(LOGS)?;
    let mut out = Vec::new();
    for row in t.range((job_id, 0)..=(job_id, u64::MAX))?.rev().take(n) {
        let (_, v) = row?;
        if let Ok(l) = from_json::<LogLine>(v.value()) {
            out.push(l);
        }
    }
    Ok(out)
}

/// The last `n` lines of job `job_id`'s newest attempt that logged.
pub fn tail<R: Reader>(r: &R, job_id: u64, n: usize) -> Result<Vec<String>> {
    let t = r.table(LOGS)?;
    let mut out = Vec::new();
    let mut attempt = None;
    for row in t.range((job_id, 0)..=(job_id, u64::MAX))?.rev() {
        let (_, v) = row?;
        let Ok(l) = from_json::<LogLine>(v.value()) else { continue };
        if *attempt.get_or_insert(l.attempt) != l.attempt || out.len() == n {
            break;
        }
        out.push(format!("[{}] {}", l.source, l.text));
    }
    out.reverse();
    Ok(out)
}
