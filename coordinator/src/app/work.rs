//! What worker daemons ask of the coordinator: register, heartbeat, the Acquire long-poll, and
//! the events of each attempt. Every call after Register must carry the credential that
//! registered its worker id; every write names (job, attempt) and is fenced.
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladder_core::attempt::{Assignment, AttemptEvent};
use ladder_core::job::Slot;

use super::{App, attempts, blobs, lifecycle, queue, registry};
use crate::error::{CoordError, Result};
use crate::records::{JobRecord, JobState};
use crate::store::Read;

/// What one slot asks for when it acquires.
#[derive(Debug, Clone, Default)]
pub struct SlotRequest {
    pub worker_id: String,
    pub slot: String,
    /// Most jobs it trains fused; 0 or 1 = one.
    pub max_jobs: u32,
    /// Device memory it can give, by estimate; 0 = no limit.
    pub memory_bytes: u64,
    /// Its whole device's memory; 0 = unknown.
    pub memory_total_bytes: u64,
}

/// What a slot asks, as a key: (slot, memory it offers, its device's, most jobs).
type AskKey = (Slot, u64, u64, u32);

/// The asks the queue had nothing for, since it last gained a job: an idle slot's Acquire does
/// not walk the queue again (inside the writer) until a job is queued.
#[derive(Debug, Default)]
pub struct Idle {
    /// Bumped whenever a job joins the queue.
    generation: AtomicU64,
    /// (generation, asks that found nothing in it).
    empty: Mutex<(u64, HashSet<AskKey>)>,
}

impl Idle {
    /// A job joined the queue: every ask may find something again.
    pub fn queue_changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether `key` found nothing in the queue as it is now.
    fn known_empty(&self, key: &AskKey) -> bool {
        let g = self.empty.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 == self.generation() && g.1.contains(key)
    }

    /// `key` found nothing in the queue of `generation` (read before the claim began).
    fn found_nothing(&self, key: AskKey, generation: u64) {
        let mut g = self.empty.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.0 != generation {
            *g = (generation, HashSet::new());
        }
        g.1.insert(key);
    }
}

/// What a report stored.
#[derive(Debug, Clone, Copy)]
pub struct ReportOutcome {
    /// Points newly stored (replays are not counted).
    pub stored: u32,
    /// Events refused (at the wire, or past the job's last step).
    pub refused: u32,
}

impl App {
    /// Registers a worker and its slots (each a device and its memory in bytes); returns its id
    /// and the lease length.
    pub async fn register(&self, credential: String, name: String, slots: Vec<(String, u64)>) -> Result<(String, u64)> {
        if slots.is_empty() {
            return Err(CoordError::invalid("register.slots", "a worker needs at least one slot"));
        }
        let slots = slots
            .into_iter()
            .map(|(s, m)| s.parse::<Slot>().map(|s| (s.to_string(), m)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| CoordError::invalid("register.slots", e.to_string()))?;
        if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
            return Err(CoordError::invalid("register.name", "a worker name is 1-128 printable characters"));
        }
        let now = self.now_ms();
        let shown = slots.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
        let id = self.store.write(move |txn| registry::register(txn, &name, &slots, &credential, now)).await?;
        tracing::info!(worker = %id, slots = ?shown, "worker registered");
        Ok((id, self.ttl_ms()))
    }

    /// A heartbeat: renews the leases of the listed attempts that are current (in memory: no
    /// fsync on this path) and returns the attempts that must stop.
    pub async fn heartbeat(
        &self,
        credential: &str,
        worker_id: String,
        running: Vec<(u64, u32)>,
    ) -> Result<Vec<(u64, u32)>> {
        self.check_worker(credential, &worker_id)?;
        let (ttl, now) = (self.ttl_ms(), self.now_ms());
        let checked = attempts::check_beat(&self.store.read()?, &worker_id, &running)?;
        let until = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        for &(job, attempt) in &checked.renew {
            self.renewals.renew(job, attempt, until);
        }
        let every = i64::try_from(ttl / 3).unwrap_or(i64::MAX);
        let persist = self.renewals.persist_due(&worker_id, now, every);
        let write = move |txn: &redb::WriteTransaction| attempts::heartbeat(txn, &worker_id, &running, ttl, now);
        let full = matches!(self.room(), super::disk::Room::Full(_));
        if checked.unlisted && !full {
            // A lease this worker holds but does not run: the writer releases it (a lost reply).
            let released = self.store.write(write).await?;
            self.publish(&released);
        } else if persist && !full {
            let app = self.clone();
            tokio::spawn(async move {
                match app.store.write(write).await {
                    Ok(released) => app.publish(&released),
                    Err(e) => tracing::warn!("persisting a heartbeat: {e}"),
                }
            });
        }
        Ok(checked.stop)
    }

    /// The Acquire long-poll: waits up to `wait` (at most [`super::Config::max_wait`]) for a job
    /// that fits the slot; returns the jobs leased (the first, then those fused with it).
    pub async fn acquire(&self, credential: &str, ask: SlotRequest, wait: Duration) -> Result<Vec<Assignment>> {
        self.check_worker(credential, &ask.worker_id)?;
        let deadline = tokio::time::Instant::now() + wait.min(self.cfg.max_wait);
        let ask = Arc::new(ask);
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable(); // registered before the claim: no wake-up is lost
            let leased = self.claim(ask.clone()).await?;
            if !leased.is_empty() {
                return Ok(leased);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                _ = self.shutdown.cancelled() => return Err(CoordError::Shutdown),
            }
        }
    }

    /// One claim for the slot asking: the jobs leased, as assignments. None while the disk is
    /// full: a new attempt would only report points that must wait.
    async fn claim(&self, ask: Arc<SlotRequest>) -> Result<Vec<Assignment>> {
        if let super::disk::Room::Full(_) = self.room() {
            return Ok(Vec::new());
        }
        let (ttl, now) = (self.ttl_ms(), self.now_ms());
        let slot: Slot = ask
            .slot
            .parse()
            .map_err(|e: ladder_core::DomainError| CoordError::invalid("acquire.slot", e.to_string()))?;
        let key: AskKey = (slot, ask.memory_bytes, ask.memory_total_bytes, ask.max_jobs);
        if self.idle.known_empty(&key) {
            return Ok(Vec::new());
        }
        let generation = self.idle.generation();
        let a = ask.clone();
        let claimed = self
            .store
            .write(move |txn| {
                let slot = queue::SlotAsk {
                    worker_id: &a.worker_id,
                    slot,
                    max_jobs: a.max_jobs,
                    memory_bytes: a.memory_bytes,
                    memory_total_bytes: a.memory_total_bytes,
                };
                queue::claim(txn, slot, ttl, now)
            })
            .await?;
        if claimed.leased.is_empty() {
            self.idle.found_nothing(key, generation);
        }
        let r = self.store.read()?;
        let mut out = Vec::with_capacity(claimed.leased.len());
        for job in &claimed.leased {
            tracing::info!(job = job.id, attempt = job.attempt, worker = %ask.worker_id, "leased");
            self.leased(job);
            out.push(assignment(&job.clone().with_config(&r)?, ttl, &r)?);
        }
        Ok(out)
    }

    /// Stores an attempt's events; `refused_at_wire` counts those the wire refused (and why).
    pub async fn report(
        &self,
        credential: &str,
        worker_id: String,
        job_id: u64,
        attempt: u32,
        events: Vec<AttemptEvent>,
        refused_at_wire: (u32, Option<String>),
    ) -> Result<ReportOutcome> {
        self.check_worker(credential, &worker_id)?;
        self.count_refused(job_id, attempt, refused_at_wire.0, refused_at_wire.1.as_deref());
        self.refuse_if_full("reporting points")?;
        // Log lines count against the same disk as uploads: refused first when it runs low.
        let (events, dropped_logs) = match self.room() {
            super::disk::Room::Low(_) => {
                let n = events.iter().filter(|e| matches!(e, AttemptEvent::Log { .. })).count();
                (events.into_iter().filter(|e| !matches!(e, AttemptEvent::Log { .. })).collect(), n as u32)
            }
            _ => (events, 0),
        };
        self.count_refused(
            job_id,
            attempt,
            dropped_logs,
            (dropped_logs > 0).then_some("log lines refused: the store's disk is below --min-free-bytes"),
        );
        // An attempt that is not current never becomes current again: refused on a read, a
        // burst of stale reports (after a cancel) never reaches the writer.
        lifecycle::current(&JobRecord::load(&self.store.read()?, job_id)?, &worker_id, attempt)?;
        let events = Arc::new(events);
        let evs = events.clone();
        let out = self.store.write(move |txn| attempts::report(txn, &worker_id, job_id, attempt, &evs)).await?;
        if out.stored > 0 || events.iter().any(|e| matches!(e, AttemptEvent::Started { .. })) {
            self.stored(&out.job, attempt, &events);
        }
        self.count_refused(job_id, attempt, out.refused, out.why.as_deref());
        if out.job.state != JobState::Running {
            tracing::info!(job = out.job.id, state = ?out.job.state, failure = ?out.job.failure, "attempt ended");
        }
        self.counters.points.fetch_add(u64::from(out.stored), Ordering::Relaxed);
        self.publish(std::slice::from_ref(&out.job)); // wakes one Acquire if the job was requeued
        self.publish(&out.branches);
        Ok(ReportOutcome { stored: out.stored, refused: refused_at_wire.0 + dropped_logs + out.refused })
    }

    /// Logs and counts `n` events of a report refused (invalid at the wire, or past the job's
    /// last step), `why` the first reason; nothing when none was.
    fn count_refused(&self, job_id: u64, attempt: u32, n: u32, why: Option<&str>) {
        if let Some(why) = why {
            tracing::warn!(job = job_id, attempt, refused = n, "refused events: {why}");
            self.counters.refused.fetch_add(u64::from(n), Ordering::Relaxed);
        }
    }
}

/// The assignment of a job just leased, with every checkpoint step it could resume from.
fn assignment(j: &JobRecord, ttl_ms: u64, r: &Read) -> Result<Assignment> {
    let config = j.config.clone().ok_or_else(|| CoordError::storage(format!("job {} has no stored config", j.id)))?;
    Ok(Assignment {
        job_id: j.id,
        attempt: j.attempt,
        config,
        dataset_sha256: j.dataset_sha256.clone(),
        resume_step: j.checkpoint_step,
        lease_ttl_ms: ttl_ms,
        memory_bytes: j.memory_bytes,
        checkpoint_steps: blobs::checkpoints(r, j.id)?.iter().map(|c| c.info.step).collect(),
        branch_from: blobs::branch_source(r, j)?,
    })
}
