//! Server-sent events: a sweep's page hears of every job change, every point stored and every
//! refit; a job's page of that job's changes and points. Each stream forwards the coordinator's
//! broadcasts (points in batches, at most [`BATCH_EVERY`] after their commit), and ends when the
//! page goes or the coordinator stops.
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;

use super::Web;

/// How long stored points wait to go out together.
pub const BATCH_EVERY: Duration = Duration::from_millis(250);
/// Most point reports in one event.
pub const BATCH_MAX: usize = 512;

/// What a stream follows.
#[derive(Debug, Clone, Copy)]
pub enum Follow {
    Sweep(u64),
    Job(u64),
}

fn event(name: &str, v: &impl serde::Serialize) -> Option<Event> {
    serde_json::to_string(v).ok().map(|d| Event::default().event(name).data(d))
}

/// The stream of `follow`'s events.
pub fn stream(w: &Web, follow: Follow) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
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
            let mut out: Vec<Event> = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                _ = tick.tick() => {
                    // An open page of a sweep watches its fits: they are refitted as it changes.
                    if let Follow::Sweep(s) = follow {
                        live.watch(s);
                    }
                }
                j = jobs.recv() => match j {
                    Ok(j) if wants(j.sweep_id, j.id) => {
                        changed.insert(j.id, j);
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                    _ => continue,
                },
                p = points.recv() => match p {
                    Ok(p) if wants(p.sweep_id, p.job_id) => {
                        batch.push(p);
                        if batch.len() < BATCH_MAX {
                            continue;
                        }
                    }
                    Err(RecvError::Closed) => return,
                    _ => continue,
                },
                f = fits.recv() => match f {
                    Ok(f) if matches!(follow, Follow::Sweep(s) if s == f.sweep_id) => out.extend(event("fits", &*f)),
                    Err(RecvError::Closed) => return,
                    _ => continue,
                },
            }
            if !changed.is_empty() {
                let jobs: Vec<_> = std::mem::take(&mut changed).into_values().collect();
                out.splice(0..0, event("job", &jobs));
            }
            if !batch.is_empty() {
                let all: Vec<&crate::app::StoredPoints> = batch.iter().map(|p| &**p).collect();
                out.splice(0..0, event("points", &all));
                batch.clear();
            }
            for ev in out {
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
        }
    });
    Sse::new(ReceiverStream::<Result<Event, Infallible>>::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
