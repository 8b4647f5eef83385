//! Server-sent events: a sweep's page hears of every job change, every point stored and every
//! refit; a job's page of that job's changes and points. Each stream forwards the coordinator's
//! broadcasts as they happen (a point reaches the page within milliseconds of its commit), and
//! ends when the page goes or the coordinator stops.
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;

use super::Web;

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
    let (mut jobs, mut points, mut fits) =
        (w.coord.subscribe_jobs(), w.coord.subscribe_points(), w.coord.fits.subscribe());
    let shutdown = w.shutdown.clone();
    tokio::spawn(async move {
        let wants = |sweep: u64, job: u64| match follow {
            Follow::Sweep(s) => s == sweep,
            Follow::Job(j) => j == job,
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                j = jobs.recv() => match j {
                    Ok(j) if wants(j.sweep_id, j.id) => event("job", &j),
                    Err(RecvError::Closed) => return,
                    _ => None,
                },
                p = points.recv() => match p {
                    Ok(p) if wants(p.sweep_id, p.job_id) => event("points", &*p),
                    Err(RecvError::Closed) => return,
                    _ => None,
                },
                f = fits.recv() => match f {
                    Ok(f) if matches!(follow, Follow::Sweep(s) if s == f.sweep_id) => event("fits", &*f),
                    Err(RecvError::Closed) => return,
                    _ => None,
                },
            };
            if let Some(ev) = ev
                && tx.send(Ok(ev)).await.is_err()
            {
                return;
            }
        }
    });
    Sse::new(ReceiverStream::<Result<Event, Infallible>>::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
