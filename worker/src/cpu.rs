//! The worker's CPU cores, shared by its CPU attempts. An attempt whose job fixes `threads` keeps
//! them. The others each want as many threads as their matmuls can use ([`wanted_threads`]): a
//! small model gains nothing from a second thread (two single-thread runs side by side finish
//! 1.9× sooner than one after the other on two threads, at 1×48), a large one nearly doubles.
//! Each gets one thread, then more up to what it wants, then any idle core; everyone is told a new
//! count when an attempt starts or ends. A CPU slot takes a new job only while the running ones
//! want fewer threads than there are cores.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

/// Where a new thread count goes: the trainer's control channel (its stdin).
pub type ThreadsTx = mpsc::UnboundedSender<i32>;

#[derive(Debug)]
struct Entry {
    fixed: Option<i32>,
    /// Threads an elastic attempt can use well.
    wanted: i32,
    tx: Option<ThreadsTx>,
    current: i32,
}

/// Matmul work per thread below which another thread costs more than it gives: rows of a
/// micro-batch × d_model² (measured on this project's CPU benchmark: 2×96 at 2048 tokens, 1.9e7,
/// runs 1.1× faster as two single-thread jobs; 3×128, 3.4e7, scales 2.0× on two threads).
pub const WORK_PER_THREAD: f64 = 2.4e7;

/// The threads a job with micro-batches of `micro_tokens` tokens and width `d_model` can use.
pub fn wanted_threads(micro_tokens: u64, d_model: u64, members: u64, cores: usize) -> i32 {
    let work = micro_tokens as f64 * (d_model as f64).powi(2) * members.max(1) as f64;
    let cores = cores.max(1) as f64;
    (work / WORK_PER_THREAD).ceil().clamp(1.0, cores) as i32
}

#[derive(Debug)]
struct Inner {
    cores: i32,
    next: u64,
    entries: BTreeMap<u64, Entry>,
}

impl Inner {
    /// Threads the running attempts want (fixed counts as they are).
    fn wanted(&self) -> i32 {
        self.entries.values().map(|e| e.fixed.unwrap_or(e.wanted)).sum()
    }
}

/// Shared by every CPU slot of one worker.
#[derive(Debug, Clone)]
pub struct CpuPool(Arc<Mutex<Inner>>, Arc<tokio::sync::Notify>, Arc<tokio::sync::Mutex<()>>);

/// An attempt's place in the pool; leaving the pool on drop.
#[derive(Debug)]
pub struct CpuShare {
    pool: CpuPool,
    id: u64,
}

impl CpuPool {
    pub fn new(cores: usize) -> Self {
        let cores = i32::try_from(cores.max(1)).unwrap_or(i32::MAX);
        Self(Arc::new(Mutex::new(Inner { cores, next: 0, entries: BTreeMap::new() })), Arc::default(), Arc::default())
    }

    /// Waits for a spare core and the right to take work: one slot at a time asks the
    /// coordinator and joins the pool before the next one looks, so two slots never both see the
    /// same spare core. Drop the guard once the attempt joined (or none came).
    pub async fn turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        loop {
            self.free_core().await;
            let guard = self.2.clone().lock_owned().await;
            if self.0.lock().map_or(true, |g| g.wanted() < g.cores) {
                return guard;
            }
        }
    }

    pub fn cores(&self) -> usize {
        self.0.lock().map_or(1, |g| g.cores as usize)
    }

    /// Waits until the running attempts want fewer threads than there are cores.
    pub async fn free_core(&self) {
        loop {
            let notified = self.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.lock().map_or(true, |g| g.wanted() < g.cores) {
                return;
            }
            notified.await;
        }
    }

    /// Joins the pool; returns the share and the attempt's thread count to start with.
    /// `fixed` is the job's own `threads`, `wanted` what an elastic one can use.
    pub fn join(&self, fixed: Option<i32>, wanted: i32) -> (CpuShare, i32) {
        let Ok(mut g) = self.0.lock() else { return (CpuShare { pool: self.clone(), id: u64::MAX }, 1) };
        let id = g.next;
        g.next += 1;
        g.entries.insert(id, Entry { fixed, wanted: wanted.max(1), tx: None, current: 0 });
        rebalance(&mut g);
        let start = g.entries.get(&id).map_or(1, |e| e.current);
        (CpuShare { pool: self.clone(), id }, start)
    }

    /// The thread counts now assigned, in join order (for tests and metrics).
    pub fn counts(&self) -> Vec<i32> {
        self.0.lock().map(|g| g.entries.values().map(|e| e.current).collect()).unwrap_or_default()
    }
}

impl CpuShare {
    /// Where later counts go, once the attempt runs; sends the current count at once if it
    /// moved since the attempt started with `started`.
    pub fn attach(&self, tx: ThreadsTx, started: i32) {
        if let Ok(mut g) = self.pool.0.lock()
            && let Some(e) = g.entries.get_mut(&self.id)
        {
            if e.current != started {
                let _ = tx.send(e.current);
            }
            e.tx = Some(tx);
        }
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        if let Ok(mut g) = self.pool.0.lock() {
            g.entries.remove(&self.id);
            rebalance(&mut g);
        }
        self.pool.1.notify_waiters();
    }
}

/// Fixed attempts keep theirs. Elastic ones (oldest first) get one thread each, then one more at
/// a time while they want more, then the idle cores round-robin. A changed count is sent.
fn rebalance(g: &mut Inner) {
    let fixed: i32 = g.entries.values().filter_map(|e| e.fixed).sum();
    let mut counts: Vec<(u64, i32, i32)> =
        g.entries.iter().filter(|(_, e)| e.fixed.is_none()).map(|(&id, e)| (id, 1, e.wanted)).collect();
    let mut free = g.cores - fixed - counts.len() as i32;
    for stage in [true, false] {
        // First up to what each wants, then beyond it.
        while free > 0 {
            let mut gave = false;
            for c in counts.iter_mut() {
                if free > 0 && (!stage || c.1 < c.2) {
                    c.1 += 1;
                    free -= 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }
    for (id, e) in g.entries.iter_mut() {
        let want = e.fixed.unwrap_or_else(|| counts.iter().find(|c| c.0 == *id).map_or(1, |c| c.1));
        if want != e.current {
            e.current = want;
            if let Some(tx) = &e.tx {
                let _ = tx.send(want);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elastic_attempts_share_the_cores_and_grow_when_others_leave() {
        let pool = CpuPool::new(4);
        let (tx_a, mut rx_a) = mpsc::unbounded_channel();
        let (a, start_a) = pool.join(None, 1);
        assert_eq!(start_a, 4, "alone, an attempt takes every core");
        let (b, start_b) = pool.join(None, 1);
        assert_eq!((start_b, pool.counts()), (2, vec![2, 2]));
        a.attach(tx_a, start_a); // a started with 4 and now has 2: told at once
        let (fixed, start_f) = pool.join(Some(1), 1);
        assert_eq!((start_f, pool.counts()), (1, vec![2, 1, 1]), "the oldest takes the spare core");
        drop(b);
        assert_eq!(pool.counts(), vec![3, 1]);
        drop(fixed);
        assert_eq!(pool.counts(), vec![4]);
        let told: Vec<i32> = std::iter::from_fn(|| rx_a.try_recv().ok()).collect();
        assert_eq!(told, vec![2, 3, 4], "a hears every change of its share");
        drop(a);
        assert!(pool.counts().is_empty());
        // More fixed threads than cores still leaves every elastic attempt one.
        let (_f, _) = pool.join(Some(8), 1);
        let (_e, s) = pool.join(None, 1);
        assert_eq!(s, 1);
    }

    #[test]
    fn what_each_attempt_wants_comes_first() {
        let pool = CpuPool::new(4);
        let (_small, _) = pool.join(None, 1);
        let (_big, _) = pool.join(None, 3);
        assert_eq!(pool.counts(), vec![1, 3], "the big one gets the cores it can use");
        assert_eq!(wanted_threads(2048, 48, 1, 2), 1);
        assert_eq!(wanted_threads(2048, 128, 1, 2), 2);
        assert_eq!(wanted_threads(2048, 192, 1, 8), 4);
    }

    #[tokio::test]
    async fn a_slot_waits_while_the_running_attempts_want_every_core() {
        let pool = CpuPool::new(2);
        let (big, _) = pool.join(None, 2);
        let waiting = tokio::spawn({
            let p = pool.clone();
            async move { p.free_core().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no core is free");
        drop(big);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.expect("woken").expect("joined");
        let (_small, _) = pool.join(None, 1);
        tokio::time::timeout(std::time::Duration::from_millis(100), pool.free_core()).await.expect("a core is free");
    }
}
