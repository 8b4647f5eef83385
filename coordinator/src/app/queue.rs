//! The queue and leases: the costliest queued job first (longest processing time first keeps a
//! sweep's makespan short), gang leases of jobs that train fused, the reaper of expired leases,
//! and the grace a restarted coordinator gives the leases it finds.
use redb::{ReadableTable, WriteTransaction};

use ladder_core::job::Slot;

use super::lifecycle::{clear_staged, fail_attempt, settle};
use super::state::set_state;
use crate::error::{CoordError, Result};
use crate::records::{Failure, JobRecord, JobState, Lease};
use crate::tables::{JOBS, LEASES, QUEUE, Reader};

/// What a slot asks for.
#[derive(Debug, Clone, Copy)]
pub struct SlotAsk<'a> {
    pub worker_id: &'a str,
    pub slot: Slot,
    /// Most jobs it trains fused; 0 or 1 = one.
    pub max_jobs: u32,
    /// Device memory it can give, by estimate; 0 = no limit.
    pub memory_bytes: u64,
    /// Its whole device's memory; 0 = unknown. A job that must run alone takes a slot only
    /// while the device is idle (all of it offered).
    pub memory_total_bytes: u64,
}

impl SlotAsk<'_> {
    /// Whether this slot may take `job` as the lead of a claim. A job that fits no slot of this
    /// worker is skipped, never failed: it waits until a slot that fits asks.
    fn takes(&self, job: &JobRecord) -> bool {
        if !job.device.fits(self.slot) {
            return false;
        }
        if self.memory_bytes > 0 && job.memory_bytes > self.memory_bytes {
            return false;
        }
        !job.exclusive || self.memory_total_bytes == 0 || self.memory_bytes >= self.memory_total_bytes
    }
}

/// What a claim did: the jobs leased (the first first, the rest fused with it).
#[derive(Debug, Default)]
pub struct Claimed {
    pub leased: Vec<JobRecord>,
}

/// Queue entries read at a time by a claim.
const QUEUE_PAGE: usize = 256;
/// How far past the lead a claim looks for fused partners.
const PARTNER_WINDOW: usize = 1024;

/// Leases the first queued job that fits the slot, as a new attempt, and up to `max_jobs − 1`
/// more that may train fused with it (the same sweep and fusing class, resuming from the same
/// step, within the slot's memory together). An unreadable record leaves the queue with an error
/// logged; it never stops the claim.
pub fn claim(txn: &WriteTransaction, ask: SlotAsk<'_>, ttl_ms: u64, now: i64) -> Result<Claimed> {
    let mut out = Claimed::default();
    let mut memory = 0u64;
    // The queue is read a page at a time from its head, so a claim costs what it examines, not
    // the queue's length. Fused partners share the lead's rank, so they follow it closely: the
    // search for them stops PARTNER_WINDOW entries past the lead.
    let mut after: Option<(u64, u64)> = None;
    let mut since_lead = 0usize;
    'pages: loop {
        let page: Vec<(u64, u64)> = {
            let q = txn.open_table(QUEUE)?;
            let keys = match after {
                None => q.iter()?,
                Some(k) => q.range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))?,
            };
            keys.take(QUEUE_PAGE).map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?
        };
        let Some(&last) = page.last() else { break };
        after = Some(last);
        for (rank_key, id) in page {
            if !out.leased.is_empty() {
                since_lead += 1;
                if since_lead > PARTNER_WINDOW {
                    break 'pages;
                }
            }
            let job = match JobRecord::load(txn, id) {
                Ok(j) => j,
                Err(CoordError::NotFound(_)) => {
                    txn.open_table(QUEUE)?.remove((rank_key, id))?;
                    continue;
                }
                Err(CoordError::Storage(e)) => {
                    tracing::error!(job = id, "dropped from the queue: {e}");
                    txn.open_table(QUEUE)?.remove((rank_key, id))?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if job.state != JobState::Queued {
                txn.open_table(QUEUE)?.remove((rank_key, id))?;
                continue;
            }
            match out.leased.first() {
                None if !ask.takes(&job) => continue,
                None => {}
                Some(lead) => {
                    let same = lead.sweep_id == job.sweep_id
                        && lead.fuse_class.is_some()
                        && lead.fuse_class == job.fuse_class
                        && lead.checkpoint_step == job.checkpoint_step
                        && !job.exclusive;
                    let fits = ask.memory_bytes == 0 || memory.saturating_add(job.memory_bytes) <= ask.memory_bytes;
                    if !same || !fits {
                        continue;
                    }
                }
            }
            memory = memory.saturating_add(job.memory_bytes);
            let limit = if job.exclusive { 1 } else { ask.max_jobs.max(1).min(job.fuse.max(1)) as usize };
            out.leased.push(job);
            if out.leased.len() >= limit {
                break 'pages;
            }
        }
    }
    for job in out.leased.iter_mut() {
        set_state(txn, job, JobState::Running)?;
        job.attempt += 1;
        job.lease =
            Some(Lease { worker_id: ask.worker_id.to_string(), expires_ms: now + ttl_ms as i64, granted_ms: now });
        job.resumed_from_step = job.checkpoint_step;
        job.save(txn)?;
        job.index_lease(txn)?;
        clear_staged(txn, job.id, job.attempt)?;
    }
    Ok(out)
}

/// Requeues (or fails) every running job whose lease expired before `now`. It reads only the
/// leased jobs (the lease index), not every job. A record that does not read is logged and
/// skipped: no one record stops the reaper.
pub fn reap(txn: &WriteTransaction, now: i64, renewed: &Renewed) -> Result<Vec<JobRecord>> {
    let mut running = Vec::new();
    for id in expired(txn, now, renewed)? {
        running.push(JobRecord::load(txn, id)?);
    }
    let mut changed = Vec::new();
    for mut job in running {
        let holder = job.lease.as_ref().map(|l| l.worker_id.clone()).unwrap_or_default();
        let msg = format!("lease of attempt {} on worker {holder} expired", job.attempt);
        fail_attempt(txn, &mut job, Failure::Lost, msg)?;
        job.save(txn)?;
        let branches = settle(txn, &job)?;
        changed.push(job);
        changed.extend(branches);
    }
    Ok(changed)
}

/// Lease renewals held in memory: (job, attempt) → renewed until (ms).
pub type Renewed = std::collections::HashMap<(u64, u32), i64>;

/// The jobs whose lease has run out at `now`: its stored expiry and its renewal in memory (if
/// any) both passed.
pub fn expired<R: Reader>(r: &R, now: i64, renewed: &Renewed) -> Result<Vec<u64>> {
    let leased: Vec<u64> = {
        let t = r.table(LEASES)?;
        let mut ids = Vec::new();
        for row in t.iter()? {
            let (k, _) = row?;
            ids.push(k.value().1);
        }
        ids
    };
    let mut out = Vec::new();
    for id in leased {
        match JobRecord::load(r, id) {
            Ok(j) if j.state == JobState::Running => {
                let stored = j.lease.as_ref().map_or(i64::MAX, |l| l.expires_ms);
                let until = renewed.get(&(j.id, j.attempt)).map_or(stored, |&r| r.max(stored));
                if until < now {
                    out.push(id);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(job = id, "reaper skips a record that does not read: {e}"),
        }
    }
    Ok(out)
}

/// At start: every lease is renewed to `now + grace` (and indexed), so an outage of the coordinator itself
/// does not expire the attempts that kept running meanwhile. Returns how many were renewed.
pub fn grace(txn: &WriteTransaction, now: i64, grace_ms: u64) -> Result<usize> {
    let held: Vec<JobRecord> = {
        let t = txn.open_table(JOBS)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (k, v) = r?;
            if let Ok(j) = JobRecord::decode(k.value(), v.value())
                && j.state == JobState::Running
                && j.lease.is_some()
            {
                out.push(j);
            }
        }
        out
    };
    let n = held.len();
    for mut job in held {
        if let Some(l) = job.lease.as_mut() {
            l.expires_ms = l.expires_ms.max(now + grace_ms as i64);
        }
        job.save(txn)?;
        // The reaper reads the lease index only: make sure it lists every lease held.
        job.index_lease(txn)?;
    }
    Ok(n)
}
