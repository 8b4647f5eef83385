//! Server-sent events: a sweep's page hears of every job change, every point stored and every
//! refit; a job's page of that job's changes and points. Each stream forwards the coordinator's
//! broadcasts (points in batches, at most [`BATCH_EVERY`] after their commit), and ends when the
//! page goes or the coordinator stops.
//!
//! Each page has a budget of [`BUDGET`] bytes of events sent but not yet taken by its
//! connection. A page that falls behind (past its budget, or behind the broadcasts themselves)
//! loses nothing silently: what it missed is dropped and, once it has caught up, it gets one
//! `resync` event, on which it reloads its state.
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::Web;

/// How long stored points wait to go out together.
pub const BATCH_EVERY: Duration = Duration::from_millis(250);
/// Most point reports in one event.
pub const BATCH_MAX: usize = 512;
/// Bytes of events a page may have queued; past them it must resync.
pub const BUDGET: usize = 4 << 20;

/// What a stream follows.
#[derive(Debug, Clone, Copy)]
pub enum Follow {
    Sweep(u64),
    Job(u64),
}

/// An event and its size.
fn event(name: &str, v: &impl serde::Serialize) -> Option<(Event, usize)> {
    serde_json::to_string(v).ok().map(|d| (d.len(), d)).map(|(n, d)| (Event::default().event(name).data(d), n))
}

/// The events of one page, within its byte budget.
struct Outlet {
    tx: tokio::sync::mpsc::Sender<(Event, usize)>,
    queued: Arc<AtomicUsize>,
    /// The page missed something: it gets a `resync` once its queue has drained.
    behind: bool,
}

impl Outlet {
    /// Queues `ev`, or marks the page behind when it would pass its budget; false once the page
    /// is gone.
    fn send(&mut self, ev: (Event, usize)) -> bool {
        if self.behind || self.queued.load(Ordering::Acquire) + ev.1 > BUDGET {
            self.behind = true;
            return !self.tx.is_closed();
        }
        self.queued.fetch_add(ev.1, Ordering::AcqRel);
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(tokio::sync::mpsc::error::TrySendError::Full((_, n))) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                self.behind = true;
                true
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// A page that fell behind and has since caught up gets its `resync`.
    fn catch_up(&mut self) -> bool {
        if self.behind && self.queued.load(Ordering::Acquire) == 0 {
            self.behind = false;
            if let Some(ev) = event("resync", &"the page fell behind: reload") {
                return self.send(ev);
            }
        }
        !self.tx.is_closed()
    }
}

/// The stream of `follow`'s events.
pub fn stream(w: &Web, follow: Follow) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let queued = Arc::new(AtomicUsize::new(0));
    let mut out = Outlet { tx, queued: queued.clone(), behind: false };
    let (mut jobs, mut points, mut fits) = (w.app.subscribe_jobs(), w.app.subscribe_points(), w.app.fits.subscribe());
    let shutdown = w.shutdown.clone();
    let live = w.app.fits.clone();
    tokio::spawn(async move {
        let wants = |sweep: u64, job: u64| match follow {
            Follow::Sweep(s) => s == sweep,
            Follow::Job(j) => j == job,
        };
        // Points and job changes go out in batches, one event of each per [`BATCH_EVERY`] (or
        // per [`BATCH_MAX`] reports), a job's latest state only: a sweep with a thousand running
        // jobs sends a page a few events a second, not thousands. Fit events flush both first.
        let mut batch: Vec<std::sync::Arc<crate::app::StoredPoints>> = Vec::new();
        let mut changed: std::collections::BTreeMap<u64, ladder_core::status::JobStatus> = Default::default();
        let mut tick = tokio::time::interval(BATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut evs: Vec<(Event, usize)> = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = out.tx.closed() => return,
                _ = tick.tick() => {
                    // An open page of a sweep watches its fits: they are refitted as it changes.
                    if let Follow::Sweep(s) = follow {
                        live.watch(s);
                    }
                    if !out.catch_up() {
                        return;
                    }
                }
                j = jobs.recv() => match j {
                    Ok(j) if wants(j.sweep_id, j.id) => {
                        changed.insert(j.id, j);
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                    Err(RecvError::Lagged(_)) => out.behind = true,
                    Ok(_) => continue,
                },
                p = points.recv() => match p {
                    Ok(p) if wants(p.sweep_id, p.job_id) => {
                        batch.push(p);
                        if batch.len() < BATCH_MAX {
                            continue;
                        }
                    }
                    Err(RecvError::Closed) => return,
                    Err(RecvError::Lagged(_)) => out.behind = true,
                    Ok(_) => continue,
                },
                f = fits.recv() => match f {
                    Ok(f) if matches!(follow, Follow::Sweep(s) if s == f.sweep_id) => evs.extend(event("fits", &*f)),
                    Err(RecvError::Closed) => return,
                    Err(RecvError::Lagged(_)) => out.behind = true,
                    Ok(_) => continue,
                },
            }
            if out.behind {
                // What it missed is dropped: the resync reloads all of it.
                changed.clear();
                batch.clear();
                continue;
            }
            if !changed.is_empty() {
                let jobs: Vec<_> = std::mem::take(&mut changed).into_values().collect();
                evs.splice(0..0, event("job", &jobs));
            }
            if !batch.is_empty() {
                let all: Vec<&crate::app::StoredPoints> = batch.iter().map(|p| &**p).collect();
                evs.splice(0..0, event("points", &all));
                batch.clear();
            }
            for ev in evs {
                if !out.send(ev) {
                    return;
                }
            }
        }
    });
    // An event leaves the budget once the connection has taken it.
    let body = ReceiverStream::new(rx).map(move |(ev, n)| {
        queued.fetch_sub(n, Ordering::AcqRel);
        Ok::<_, Infallible>(ev)
    });
    Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}
