//! Lease renewals held in memory. A heartbeat checks its attempts on a read and renews their
//! leases here: it never waits on the writer or an fsync. The reaper expires a lease only when
//! both its stored expiry and its renewal here have passed.
//!
//! Renewals need no durability: the leases found when the coordinator starts get a grace period
//! (`Config::startup_grace`), so a restart takes back nothing a heartbeat promised. Each worker's
//! renewals and last-seen time still reach the store every third of a lease, off the heartbeat's
//! path, so listings after a restart stay close.
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Inner {
    /// (job, attempt) → renewed until (ms).
    leases: HashMap<(u64, u32), i64>,
    /// worker id → when its renewals last went to the store (ms).
    persisted: HashMap<String, i64>,
}

#[derive(Debug, Default)]
pub struct Renewals(Mutex<Inner>);

impl Renewals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lease of `(job, attempt)` holds until at least `until`.
    pub fn renew(&self, job: u64, attempt: u32, until: i64) {
        let mut g = self.lock();
        let e = g.leases.entry((job, attempt)).or_insert(until);
        *e = (*e).max(until);
    }

    /// Every renewal, for the reaper.
    pub fn snapshot(&self) -> HashMap<(u64, u32), i64> {
        self.lock().leases.clone()
    }

    /// Forgets renewals that ran out before `now` (their attempts ended or expired).
    pub fn prune(&self, now: i64) {
        self.lock().leases.retain(|_, until| *until >= now);
    }

    /// Whether `worker`'s renewals are due to reach the store (the last time was `every` ms ago
    /// or more); if so, it counts as done now.
    pub fn persist_due(&self, worker: &str, now: i64, every: i64) -> bool {
        let mut g = self.lock();
        let last = g.persisted.get(worker).copied();
        if last.is_some_and(|t| now - t < every) {
            return false;
        }
        g.persisted.insert(worker.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_only_extend_and_are_pruned_once_past() {
        let r = Renewals::default();
        r.renew(1, 1, 100);
        r.renew(1, 1, 50);
        assert_eq!(r.snapshot().get(&(1, 1)), Some(&100), "a late renewal never shortens a lease");
        r.prune(101);
        assert!(r.snapshot().is_empty());
        assert!(r.persist_due("w", 0, 10));
        assert!(!r.persist_due("w", 5, 10));
        assert!(r.persist_due("w", 10, 10));
    }
}
