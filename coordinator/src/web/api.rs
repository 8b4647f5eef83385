//! The page's JSON: sweeps, a sweep's jobs, curves and fits, a job with its curve and log. Each
//! answer reads one snapshot of the store, off the async runtime.
use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Web;
use crate::error::{CoordError, Result};
use crate::records::JobRecord;
use crate::{attempts, logs, sweeps};

/// A job's status as the page reads it: the status, its ETA, and a failed job's last lines.
fn job_json(st: &ladder_core::status::JobStatus) -> Value {
    let mut v = serde_json::to_value(st).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("eta_s".into(), json!(st.eta_s()));
    }
    v
}

/// Every point of a job.
fn curve(r: &crate::store::Read, job_id: u64) -> Result<Vec<ladder_core::status::RecordedPoint>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = attempts::curve(r, job_id, after, attempts::CURVE_PAGE_MAX)?;
        out.extend(page);
        match more {
            Some(m) => after = m,
            None => return Ok(out),
        }
    }
}

impl Web {
    /// Runs a read off the runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::Read, &Web) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let w = self.clone();
        tokio::task::spawn_blocking(move || f(&w.coord.store.read()?, &w))
            .await
            .map_err(|e| CoordError::Server(format!("reading for the page: {e}")))?
    }

    pub async fn sweeps(&self) -> Result<Value> {
        self.read(|r, _| {
            let (list, _) = sweeps::list(r, 0, crate::service::SWEEP_PAGE)?;
            let mut out = Vec::new();
            for s in &list {
                out.push(serde_json::to_value(sweeps::status(r, s)?)?);
            }
            Ok(json!({ "sweeps": out }))
        })
        .await
    }

    pub async fn sweep(&self, name: String) -> Result<Value> {
        self.read(move |r, w| {
            let s = sweeps::find(r, &name)?;
            let slots = w.coord.live_slots_at(r)?;
            let mut jobs = Vec::new();
            for j in sweeps::jobs_of(r, &s)? {
                jobs.push(job_json(&crate::service::users::status(r, &j, &slots)?));
            }
            Ok(json!({ "sweep": sweeps::status(r, &s)?, "jobs": jobs }))
        })
        .await
    }

    pub async fn curves(&self, name: String) -> Result<Value> {
        self.read(move |r, _| {
            let s = sweeps::find(r, &name)?;
            let mut out = BTreeMap::new();
            for id in &s.job_ids {
                out.insert(id.to_string(), curve(r, *id)?);
            }
            Ok(json!({ "curves": out }))
        })
        .await
    }

    pub async fn read_sweep_id(&self, name: String) -> Result<u64> {
        self.read(move |r, _| Ok(sweeps::find(r, &name)?.id)).await
    }

    pub async fn fits(&self, name: String) -> Result<Value> {
        let id = self.read(move |r, _| Ok(sweeps::find(r, &name)?.id)).await?;
        let f = self.coord.fits.get_or_compute(&self.coord.store, self.coord.cfg.clock.now_ms(), id).await?;
        Ok(serde_json::to_value(&*f)?)
    }

    pub async fn job(&self, id: u64) -> Result<Value> {
        self.read(move |r, w| {
            let j = JobRecord::load(r, id)?;
            let st = crate::service::users::status(r, &j, &w.coord.live_slots_at(r)?)?;
            Ok(json!({ "job": job_json(&st), "points": curve(r, id)? }))
        })
        .await
    }

    pub async fn log(&self, id: u64) -> Result<Value> {
        self.read(move |r, _| {
            JobRecord::load(r, id)?;
            Ok(json!({ "lines": logs::read(r, id, 0)? }))
        })
        .await
    }

    /// Whether the page of sweep `name` or job `id` exists.
    pub async fn exists(&self, sweep: Option<String>, job: Option<u64>) -> Result<bool> {
        self.read(move |r, _| {
            let found = match (sweep, job) {
                (Some(s), _) => sweeps::find(r, &s).map(|_| ()),
                (None, Some(j)) => JobRecord::load(r, j).map(|_| ()),
                (None, None) => Ok(()),
            };
            match found {
                Ok(()) => Ok(true),
                Err(CoordError::NotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
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
