//! The page's JSON: sweeps, a sweep's jobs, curves and fits, a job with its curve and log. Each
//! answer is read off the async runtime; a sweep's curves, thinned to at most `max_points`
//! each, stream out a job at a time (each its own read), never built whole.
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Web;
use crate::error::{CoordError, Result};

/// Log lines a job's page shows.
pub const LOG_LINES: usize = 2000;

/// Points per curve the page gets by default, and the most it may ask for.
pub const MAX_POINTS: usize = 1000;
pub const MAX_POINTS_LIMIT: usize = 5000;

/// Points of a whole sweep's curves the page gets by default: each curve its share, from
/// [`MIN_POINTS`] to [`MAX_POINTS`]. A chart is about 700 pixels wide; at 500 curves of 1000
/// points Chromium took 3.3 s to draw them.
pub const SWEEP_POINTS: usize = 200_000;
pub const MIN_POINTS: usize = 100;

/// `max_points` as asked (clamped to 2..=[`MAX_POINTS_LIMIT`]), else [`MAX_POINTS`].
pub fn max_points(asked: Option<usize>) -> usize {
    asked.unwrap_or(MAX_POINTS).clamp(2, MAX_POINTS_LIMIT)
}

/// Points per curve of a sweep of `curves` jobs: as asked, else its share of [`SWEEP_POINTS`].
pub fn per_curve(asked: Option<usize>, curves: usize) -> usize {
    match asked {
        Some(_) => max_points(asked),
        None => (SWEEP_POINTS / curves.max(1)).clamp(MIN_POINTS, MAX_POINTS),
    }
}

/// A job's status as the page reads it: the status, its ETA, and a failed job's last lines.
fn job_json(st: &ladder_core::status::JobStatus) -> Value {
    let mut v = serde_json::to_value(st).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("eta_s".into(), json!(st.eta_s()));
    }
    v
}

impl Web {
    /// Runs a blocking read of the application off the runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::app::App) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || f(&app))
            .await
            .map_err(|e| CoordError::Server(format!("reading for the page: {e}")))?
    }

    /// A page of sweeps, newest first: those before `before` (0: the newest), and where the next
    /// page starts (null: none older).
    pub async fn sweeps(&self, before: u64, limit: usize) -> Result<Value> {
        self.read(move |app| {
            let (sweeps, more) = app.newest_sweeps(before, limit)?;
            Ok(json!({ "sweeps": sweeps, "next_before": more }))
        })
        .await
    }

    pub async fn sweep(&self, name: String) -> Result<Value> {
        self.read(move |app| {
            let jobs: Vec<Value> = app.jobs(&name, false)?.iter().map(job_json).collect();
            Ok(json!({ "sweep": app.sweep(&name)?, "jobs": jobs }))
        })
        .await
    }

    /// The sweep's curves as a stream of JSON text: `{"curves":{"ID":[points…],…}}`, one job's
    /// curve (at most `max_points` points, or its share of [`SWEEP_POINTS`]) read and written at a
    /// time.
    pub async fn curves(
        &self,
        name: String,
        max_points: Option<usize>,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<String>>> {
        let jobs: Vec<(u64, bool)> =
            self.read(move |app| Ok(app.jobs(&name, false)?.iter().map(|j| (j.id, j.sealed)).collect())).await?;
        // A sealed target's curve is left out until the predictions are locked.
        let mut ids = Vec::with_capacity(jobs.len());
        for (id, sealed) in jobs {
            if !sealed || self.withheld(id).await?.is_none() {
                ids.push(id);
            }
        }
        let max_points = per_curve(max_points, ids.len());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || {
            if tx.blocking_send(Ok("{\"curves\":{".into())).is_err() {
                return;
            }
            for (i, id) in ids.iter().enumerate() {
                let part = app
                    .chart(*id, max_points)
                    .and_then(|c| Ok(serde_json::to_string(&c)?))
                    .map(|c| format!("{}\"{id}\":{c}", if i > 0 { "," } else { "" }));
                let failed = part.is_err();
                if tx.blocking_send(part).is_err() || failed {
                    return;
                }
            }
            let _ = tx.blocking_send(Ok("}}".into()));
        });
        Ok(rx)
    }

    pub async fn read_sweep_id(&self, name: String) -> Result<u64> {
        self.read(move |app| app.sweep_id(&name)).await
    }

    pub async fn fits(&self, name: String) -> Result<Value> {
        let f = self.app.fits(&name).await?;
        Ok(serde_json::to_value(&*f)?)
    }

    /// Why job `id`'s data may not be shown: a sealed target before the lock (see
    /// [`crate::app::App::unseal`]); None when it may.
    async fn withheld(&self, id: u64) -> Result<Option<String>> {
        match self.app.unseal(id).await {
            Ok(()) => Ok(None),
            Err(CoordError::Sealed(why)) => Ok(Some(why)),
            Err(e) => Err(e),
        }
    }

    /// A job with its curve; a sealed target before the lock without it, saying why.
    pub async fn job(&self, id: u64, max_points: usize) -> Result<Value> {
        let withheld = self.withheld(id).await?;
        self.read(move |app| {
            let job = app.job(id)?;
            let sweep = app.sweep(&job.sweep_id.to_string())?.name;
            let points = match withheld {
                None => serde_json::to_value(app.job_chart(id, max_points)?)?,
                Some(_) => json!([]),
            };
            Ok(json!({ "job": job_json(&job), "sweep": sweep, "points": points, "withheld": withheld }))
        })
        .await
    }

    /// The newest lines of a job's log, newest first (how a failed job ended comes first); none
    /// of a sealed target's before the lock.
    pub async fn log(&self, id: u64) -> Result<Value> {
        if self.withheld(id).await?.is_some() {
            return Ok(json!({ "lines": [], "newest_first": true }));
        }
        self.read(move |app| Ok(json!({ "lines": app.newest_logs(id, LOG_LINES)?, "newest_first": true }))).await
    }

    /// A sweep's sealed targets, their locked predictions and their scores.
    pub async fn predictions(&self, name: String) -> Result<Value> {
        Ok(serde_json::to_value(self.app.predictions(&name).await?)?)
    }

    /// Whether the page of sweep `name` or job `id` exists.
    pub async fn exists(&self, sweep: Option<String>, job: Option<u64>) -> Result<bool> {
        self.read(move |app| match (sweep, job) {
            (Some(s), _) => match app.sweep_id(&s) {
                Ok(_) => Ok(true),
                Err(CoordError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            },
            (None, Some(j)) => app.job_exists(j),
            (None, None) => Ok(true),
        })
        .await
    }
}

/// The HTTP status of an error.
pub fn status_of(e: &CoordError) -> StatusCode {
    match e {
        CoordError::NotFound(_) => StatusCode::NOT_FOUND,
        CoordError::Sealed(_) => StatusCode::CONFLICT,
        e if e.is_refusal() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_curve_gets_its_share_of_the_sweep_unless_asked() {
        assert_eq!(per_curve(None, 10), MAX_POINTS);
        assert_eq!(per_curve(None, 500), 400);
        assert_eq!(per_curve(None, 1000), 200);
        assert_eq!(per_curve(None, 100_000), MIN_POINTS);
        assert_eq!(per_curve(Some(3000), 1000), 3000);
        assert_eq!(per_curve(Some(1), 1), 2);
    }
}
