//! An attempt's outbox: events go to the coordinator in order, in batches that linger up to
//! [`LINGER`] (so a fast trainer costs the coordinator one commit a second, not one a step), and a
//! flush waits until everything queued before it is durable there. A checkpoint is uploaded only
//! after a flush, so no checkpoint can become a resume point ahead of the curve it ends.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ladder_proto::pb;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::attempt::{Client, WorkerStats};
use crate::error::WorkerError;
use crate::transfer::retry;

/// Longest an event waits for company before its batch is sent.
pub const LINGER: Duration = Duration::from_millis(1000);
/// Most events in one report.
pub const MAX_BATCH: usize = 512;

enum Item {
    Event(pb::AttemptEvent),
    /// Answered `true` once every earlier event is stored, `false` if the attempt was fenced.
    Flush(oneshot::Sender<bool>),
}

/// The sending side; dropping it sends what is queued and ends the reporter.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Item>,
    stats: Arc<WorkerStats>,
}

impl Outbox {
    pub fn send(&self, e: pb::AttemptEvent) {
        if self.tx.send(Item::Event(e)).is_ok() {
            self.stats.backlog_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every event sent so far is durable at the coordinator; false once fenced.
    pub async fn flush(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

/// Starts the reporter of attempt `(worker_id, job_id, attempt)`; it cancels `fenced` when the
/// coordinator says the attempt is no longer current.
pub fn start(
    client: Client,
    ids: (String, u64, u32),
    fenced: CancellationToken,
    stats: Arc<WorkerStats>,
) -> (Outbox, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(reporter(client, ids, rx, fenced, stats.clone()));
    (Outbox { tx, stats }, handle)
}

async fn reporter(
    client: Client,
    (worker_id, job_id, attempt): (String, u64, u32),
    mut rx: mpsc::UnboundedReceiver<Item>,
    fenced: CancellationToken,
    stats: Arc<WorkerStats>,
) {
    let never = CancellationToken::new();
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { return };
        let (mut events, mut flushes) = (Vec::new(), Vec::new());
        match first {
            Item::Event(e) => events.push(e),
            Item::Flush(f) => flushes.push(f),
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        while events.len() < MAX_BATCH && flushes.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Item::Event(e))) => events.push(e),
                Ok(Some(Item::Flush(f))) => flushes.push(f),
                Ok(None) => {
                    open = false; // the attempt is over: send what is left now
                    break;
                }
                Err(_) => break,
            }
        }
        if !events.is_empty() {
            let batch = events.len() as i64;
            let req = pb::ReportEventsRequest { worker_id: worker_id.clone(), job_id, attempt, events };
            let sent = retry(&never, || {
                let mut c = client.clone();
                let r = req.clone();
                async move { c.report_events(r).await }
            })
            .await;
            stats.backlog_events.fetch_sub(batch, Ordering::Relaxed);
            match sent {
                Ok(Some(resp)) => {
                    let refused = resp.into_inner().refused;
                    if refused > 0 {
                        tracing::warn!(job = job_id, attempt, refused, "the coordinator refused invalid events");
                    }
                }
                Ok(None) => {}
                Err(WorkerError::Rpc(s)) if s.code() == Code::FailedPrecondition => {
                    tracing::warn!(job = job_id, attempt, "attempt fenced by the coordinator: {}", s.message());
                    fenced.cancel();
                    for f in flushes {
                        let _ = f.send(false);
                    }
                    return;
                }
                Err(e) => tracing::error!(job = job_id, attempt, "events refused: {e}"),
            }
        }
        for f in flushes {
            let _ = f.send(true);
        }
    }
}
