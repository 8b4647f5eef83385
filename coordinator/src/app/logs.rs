//! Each job's log: its trainers' stderr and its workers' events, line by line, as attempts
//! report them (fenced like every other event). A job keeps its newest [`MAX_LINES`] lines.
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::tables::{LOGS, Reader, from_json, to_json};

/// Lines kept per job; older ones go as new ones arrive.
pub const MAX_LINES: u64 = 10_000;
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

/// Appends a line of `attempt` to job `job_id`'s log.
pub fn append(txn: &WriteTransaction, job_id: u64, attempt: u32, source: &str, text: &str, at_ms: i64) -> Result<()> {
    let mut t = txn.open_table(LOGS)?;
    let last = t.range((job_id, 0)..=(job_id, u64::MAX))?.next_back().transpose()?.map(|(k, _)| k.value().1);
    let seq = last.map_or(1, |s| s + 1);
    let line = LogLine { seq, attempt, at_ms, source: source.to_string(), text: text.to_string() };
    t.insert((job_id, seq), to_json(&line)?.as_slice())?;
    if seq > MAX_LINES {
        t.remove((job_id, seq - MAX_LINES))?;
    }
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
