//! An attempt's outbox: events go to the coordinator in order, in batches that linger up to
//! [`LINGER`] (so a fast trainer costs the coordinator one commit a second, not one a step), and a
//! flush waits until everything queued before it is durable there. A checkpoint is uploaded only
//! after a flush, so no checkpoint can become a resume point ahead of the curve it ends. While the
//! coordinator is away the backlog stays in memory up to [`MAX_IN_MEMORY`] events, then spills to
//! a file in the attempt's folder (one JSON event per line): nothing is dropped, and memory stays
//! bounded.
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladder_core::attempt::AttemptEvent;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::env::WorkerStats;
use crate::retry::retry;
use crate::rpc::Rpc;

/// Longest an event waits for company before its batch is sent.
pub const LINGER: Duration = Duration::from_millis(1000);
/// Most events in one report.
pub const MAX_BATCH: usize = ladder_proto::MAX_REPORT_EVENTS;
/// Events held in memory before the backlog spills to disk.
pub const MAX_IN_MEMORY: i64 = 20_000;

enum Item {
    Event(AttemptEvent),
    /// Answered `true` once every earlier event is stored, `false` if the attempt was fenced.
    Flush(oneshot::Sender<bool>),
}

/// The spill file: events past the in-memory bound, one JSON line each, in order.
struct Spill {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    reader: Option<BufReader<File>>,
    written: u64,
    read: u64,
}

struct Shared {
    spill: Mutex<Spill>,
    /// While set, new events go to the spill file (after what is in memory).
    spilling: AtomicBool,
    in_memory: std::sync::atomic::AtomicI64,
}

/// The sending side; dropping it (every clone) sends what is queued and ends the reporter.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Item>,
    stats: Arc<WorkerStats>,
    shared: Arc<Shared>,
}

impl Outbox {
    pub fn send(&self, e: AttemptEvent) {
        self.stats.backlog_events.fetch_add(1, Ordering::Relaxed);
        let full = self.shared.in_memory.load(Ordering::Relaxed) >= MAX_IN_MEMORY;
        if full || self.shared.spilling.load(Ordering::SeqCst) {
            if let Ok(mut s) = self.shared.spill.lock() {
                self.shared.spilling.store(true, Ordering::SeqCst);
                if s.append(&e).is_ok() {
                    return;
                }
                tracing::error!(path = %s.path.display(), "cannot spill events to disk; holding them in memory");
            }
        }
        self.shared.in_memory.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Item::Event(e));
    }

    /// Waits until every event sent so far is durable at the coordinator; false once fenced.
    pub async fn flush(&self) -> bool {
        // Spilled events are older than a flush sent now: let them drain first.
        while self.shared.spilling.load(Ordering::SeqCst) {
            if self.tx.is_closed() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

impl Spill {
    fn append(&mut self, e: &AttemptEvent) -> std::io::Result<()> {
        if self.writer.is_none() {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.writer = Some(BufWriter::new(f));
        }
        if let Some(w) = self.writer.as_mut() {
            serde_json::to_writer(&mut *w, e)?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
        self.written += 1;
        Ok(())
    }

    /// Up to `max` spilled events not yet read.
    fn take(&mut self, max: usize) -> std::io::Result<Vec<AttemptEvent>> {
        let mut out = Vec::new();
        if self.read >= self.written {
            return Ok(out);
        }
        if self.reader.is_none() {
            self.reader = Some(BufReader::new(File::open(&self.path)?));
        }
        let Some(r) = self.reader.as_mut() else { return Ok(out) };
        while out.len() < max && self.read < self.written {
            let e = read_delimited(r)?;
            out.push(e);
            self.read += 1;
        }
        Ok(out)
    }

    /// Everything spilled was read: start over with an empty file.
    fn reset_if_drained(&mut self) -> bool {
        if self.read < self.written {
            return false;
        }
        self.writer = None;
        self.reader = None;
        self.read = 0;
        self.written = 0;
        let _ = std::fs::remove_file(&self.path);
        true
    }
}

fn read_delimited(r: &mut BufReader<File>) -> std::io::Result<AttemptEvent> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the spill file ended early"));
    }
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

/// Starts the reporter of attempt `(worker_id, job_id, attempt)`; it cancels `fenced` when the
/// coordinator says the attempt is no longer current. `spill` is where the backlog overflows.
pub fn start(
    rpc: Rpc,
    ids: (String, u64, u32),
    fenced: CancellationToken,
    stats: Arc<WorkerStats>,
    spill: PathBuf,
) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        spill: Mutex::new(Spill { path: spill, writer: None, reader: None, written: 0, read: 0 }),
        spilling: AtomicBool::new(false),
        in_memory: std::sync::atomic::AtomicI64::new(0),
    });
    let handle = tokio::spawn(reporter(rpc, ids, rx, fenced, stats.clone(), shared.clone()));
    (Outbox { tx, stats, shared }, handle)
}

/// The next batch: from memory, then (once memory is empty) from the spill file.
async fn next_batch(
    rx: &mut mpsc::UnboundedReceiver<Item>,
    shared: &Shared,
    open: &mut bool,
) -> Option<(Vec<AttemptEvent>, Vec<oneshot::Sender<bool>>)> {
    let (mut events, mut flushes) = (Vec::new(), Vec::new());
    let take = |item: Item, events: &mut Vec<AttemptEvent>, flushes: &mut Vec<oneshot::Sender<bool>>| match item {
        Item::Event(e) => {
            shared.in_memory.fetch_sub(1, Ordering::Relaxed);
            events.push(e);
        }
        Item::Flush(f) => flushes.push(f),
    };
    // What memory holds now, without waiting.
    while events.len() < MAX_BATCH && flushes.is_empty() {
        match rx.try_recv() {
            Ok(item) => take(item, &mut events, &mut flushes),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                *open = false;
                break;
            }
        }
    }
    if events.is_empty() && flushes.is_empty() && shared.spilling.load(Ordering::SeqCst) {
        if let Ok(mut s) = shared.spill.lock() {
            match s.take(MAX_BATCH) {
                Ok(batch) if !batch.is_empty() => return Some((batch, flushes)),
                Ok(_) => {
                    if s.reset_if_drained() {
                        shared.spilling.store(false, Ordering::SeqCst);
                    }
                }
                Err(e) => tracing::error!(path = %s.path.display(), "reading spilled events: {e}"),
            }
        }
    }
    if !events.is_empty() || !flushes.is_empty() {
        // Linger for company, then send.
        let deadline = tokio::time::Instant::now() + LINGER;
        while *open && events.len() < MAX_BATCH && flushes.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => take(item, &mut events, &mut flushes),
                Ok(None) => *open = false,
                Err(_) => break,
            }
        }
        return Some((events, flushes));
    }
    if !*open {
        return None;
    }
    // Nothing queued: wait for the next item.
    match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        Ok(Some(item)) => {
            take(item, &mut events, &mut flushes);
            Some((events, flushes))
        }
        Ok(None) => {
            *open = false;
            Some((events, flushes))
        }
        Err(_) => Some((events, flushes)),
    }
}

async fn reporter(
    rpc: Rpc,
    (worker_id, job_id, attempt): (String, u64, u32),
    mut rx: mpsc::UnboundedReceiver<Item>,
    fenced: CancellationToken,
    stats: Arc<WorkerStats>,
    shared: Arc<Shared>,
) {
    let never = CancellationToken::new();
    let mut open = true;
    loop {
        let Some((events, flushes)) = next_batch(&mut rx, &shared, &mut open).await else { break };
        if events.is_empty() && flushes.is_empty() {
            if !open && !shared.spilling.load(Ordering::SeqCst) {
                break;
            }
            continue;
        }
        if !events.is_empty() {
            let batch = events.len() as i64;
            let sent = retry(&never, || rpc.report(&worker_id, job_id, attempt, &events)).await;
            stats.backlog_events.fetch_sub(batch, Ordering::Relaxed);
            match sent {
                Ok(Some(acked)) => {
                    if acked.refused > 0 {
                        let refused = acked.refused;
                        tracing::warn!(job = job_id, attempt, refused, "the coordinator refused invalid events");
                    }
                }
                Ok(None) => {}
                Err(e) if e.is_fenced() => {
                    tracing::warn!(job = job_id, attempt, "attempt fenced by the coordinator: {e}");
                    fenced.cancel();
                    for f in flushes {
                        let _ = f.send(false);
                    }
                    return;
                }
                Err(e) => {
                    // Refused for good: the batch is lost, so the curve has a hole. The attempt
                    // stops here (nothing after the hole is reported, no checkpoint uploads past
                    // it); its lease expires and the next attempt resumes before the hole.
                    tracing::error!(job = job_id, attempt, "events refused; the attempt stops: {e}");
                    fenced.cancel();
                    for f in flushes {
                        let _ = f.send(false);
                    }
                    return;
                }
            }
        }
        for f in flushes {
            let _ = f.send(true);
        }
    }
    if let Ok(mut s) = shared.spill.lock() {
        s.reset_if_drained();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: u64) -> AttemptEvent {
        AttemptEvent::Point(ladder_core::events::MetricPoint {
            step,
            tokens: step * 64,
            flops: 0.1 * step as f64,
            flops_exact: 0.0,
            train_loss: 1.0 / 3.0,
            val_loss: None,
            lr: 0.0,
            grad_norm: 0.0,
            gns_small_sq: 0.0,
            gns_big_sq: 0.0,
            b_small: 0,
            b_big: 0,
            b_simple: Some(std::f64::consts::PI),
            tokens_per_s: 0.0,
        })
    }

    #[test]
    fn spilled_events_come_back_in_order_and_the_file_goes_once_drained() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("events.spill");
        let mut s = Spill { path: path.clone(), writer: None, reader: None, written: 0, read: 0 };
        for step in 1..=1000 {
            s.append(&point(step)).expect("append");
        }
        let first = s.take(300).expect("take");
        assert_eq!(first.len(), 300);
        for step in 1001..=1100 {
            s.append(&point(step)).expect("append while reading");
        }
        let mut steps: Vec<u64> = first.iter().map(step_of).collect();
        loop {
            let more = s.take(512).expect("take");
            if more.is_empty() {
                break;
            }
            steps.extend(more.iter().map(step_of));
        }
        assert_eq!(steps, (1..=1100).collect::<Vec<_>>());
        assert!(s.reset_if_drained());
        assert!(!path.exists(), "a drained spill file is removed");
    }

    fn step_of(e: &AttemptEvent) -> u64 {
        match e {
            AttemptEvent::Point(m) => {
                assert_eq!(e, &point(m.step), "spilled events come back bit for bit");
                m.step
            }
            _ => 0,
        }
    }
}
