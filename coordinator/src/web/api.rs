//! The page's JSON: sweeps, a sweep's jobs, curves and fits, a job with its curve and log. Each
//! answer reads one snapshot of the store, off the async runtime.
use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Web;
use crate::app::CURVE_PAGE_MAX;
use crate::error::{CoordError, Result};

/// A job's status as the page reads it: the status, its ETA, and a failed job's last lines.
fn job_json(st: &ladder_core::status::JobStatus) -> Value {
    let mut v = serde_json::to_value(st).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("eta_s".into(), json!(st.eta_s()));
    }
    v
}

/// Every point of a job.
fn curve(app: &crate::app::App, job_id: u64) -> Result<Vec<ladder_core::status::RecordedPoint>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = app.curve(job_id, after, CURVE_PAGE_MAX)?;
        out.extend(page);
        match more {
            Some(m) => after = m,
            None => return Ok(out),
        }
    }
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

    pub async fn sweeps(&self) -> Result<Value> {
        self.read(|app| Ok(json!({ "sweeps": app.sweeps(0, crate::app::SWEEP_PAGE)?.0 }))).await
    }

    pub async fn sweep(&self, name: String) -> Result<Value> {
        self.read(move |app| {
            let jobs: Vec<Value> = app.jobs(&name, false)?.iter().map(job_json).collect();
            Ok(json!({ "sweep": app.sweep(&name)?, "jobs": jobs }))
        })
        .await
    }

    pub async fn curves(&self, name: String) -> Result<Value> {
        self.read(move |app| {
            let mut out = BTreeMap::new();
            for j in app.jobs(&name, false)? {
                out.insert(j.id.to_string(), curve(app, j.id)?);
            }
            Ok(json!({ "curves": out }))
        })
        .await
    }

    pub async fn read_sweep_id(&self, name: String) -> Result<u64> {
        self.read(move |app| app.sweep_id(&name)).await
    }

    pub async fn fits(&self, name: String) -> Result<Value> {
        let f = self.app.fits(&name).await?;
        Ok(serde_json::to_value(&*f)?)
    }

    pub async fn job(&self, id: u64) -> Result<Value> {
        self.read(move |app| Ok(json!({ "job": job_json(&app.job(id)?), "points": curve(app, id)? }))).await
    }

    pub async fn log(&self, id: u64) -> Result<Value> {
        self.read(move |app| Ok(json!({ "lines": app.logs(id, 0)? }))).await
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
        e if e.is_refusal() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
