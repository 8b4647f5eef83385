//! What the CLI shows of sweeps, jobs, workers and datasets: one serde view each (for
//! `--output json`) and one table each.
use ladder_proto::pb;
use serde::Serialize;

use crate::table::{duration, loss, render, si};

pub fn job_state(s: i32) -> &'static str {
    match pb::JobState::try_from(s).unwrap_or(pb::JobState::Unspecified) {
        pb::JobState::Queued => "queued",
        pb::JobState::Running => "running",
        pb::JobState::Succeeded => "succeeded",
        pb::JobState::Failed => "failed",
        pb::JobState::Cancelled => "cancelled",
        pb::JobState::Unspecified => "unknown",
    }
}

pub fn sweep_state(s: i32) -> &'static str {
    match pb::SweepState::try_from(s).unwrap_or(pb::SweepState::Unspecified) {
        pb::SweepState::Running => "running",
        pb::SweepState::Done => "done",
        pb::SweepState::Cancelled => "cancelled",
        pb::SweepState::Unspecified => "unknown",
    }
}

pub fn failure(k: i32) -> &'static str {
    match pb::FailureKind::try_from(k).unwrap_or(pb::FailureKind::Unspecified) {
        pb::FailureKind::Diverged => "diverged",
        pb::FailureKind::OutOfMemory => "out of memory",
        pb::FailureKind::InvalidConfig => "invalid config",
        pb::FailureKind::Crashed => "crashed",
        pb::FailureKind::Lost => "lost",
        pb::FailureKind::Unspecified => "",
    }
}

pub fn is_final(j: &pb::Job) -> bool {
    matches!(job_state(j.state), "succeeded" | "failed" | "cancelled")
}

/// Seconds left at the current rate; NaN when unknown.
pub fn eta_s(j: &pb::Job) -> f64 {
    if job_state(j.state) != "running" || j.tokens_per_s <= 0.0 {
        return f64::NAN;
    }
    j.total_steps.saturating_sub(j.step) as f64 * j.batch_tokens as f64 / j.tokens_per_s
}

#[derive(Serialize)]
pub struct JobView {
    pub id: u64,
    pub sweep_id: u64,
    pub state: &'static str,
    pub attempt: u32,
    /// Restarts charged (failed attempts retried).
    pub restarts: u32,
    pub n_layer: u32,
    pub d_model: u32,
    pub n_ctx: u32,
    /// Exact non-embedding parameters.
    pub n: u64,
    /// Kaplan's 12·n_layer·d_model².
    pub n_kaplan: u64,
    pub n_total: u64,
    pub batch_tokens: u64,
    pub dataset_tokens: Option<u64>,
    pub seed: u64,
    pub lr: f64,
    pub step: u64,
    pub total_steps: u64,
    pub tokens: u64,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub tokens_per_s: f64,
    pub eta_s: Option<f64>,
    pub worker: String,
    pub failure: &'static str,
    pub failure_message: String,
    pub checkpoint_step: u64,
    /// The checkpoint step the current attempt resumed from; 0 = it started fresh.
    pub resumed_from_step: u64,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl From<&pb::Job> for JobView {
    fn from(j: &pb::Job) -> Self {
        JobView {
            id: j.id,
            sweep_id: j.sweep_id,
            state: job_state(j.state),
            attempt: j.attempt,
            restarts: j.restarts,
            n_layer: j.n_layer,
            d_model: j.d_model,
            n_ctx: j.n_ctx,
            n: j.n_params,
            n_kaplan: j.n_kaplan,
            n_total: j.n_total,
            batch_tokens: j.batch_tokens,
            dataset_tokens: (j.dataset_tokens > 0).then_some(j.dataset_tokens),
            seed: j.seed,
            lr: j.lr,
            step: j.step,
            total_steps: j.total_steps,
            tokens: j.tokens,
            train_loss: finite(j.train_loss).filter(|_| j.step > 0),
            val_loss: finite(j.val_loss),
            tokens_per_s: j.tokens_per_s,
            eta_s: finite(eta_s(j)),
            worker: j.worker_id.clone(),
            failure: failure(j.failure),
            failure_message: j.failure_message.clone(),
            checkpoint_step: j.checkpoint_step,
            resumed_from_step: j.resumed_from_step,
        }
    }
}

pub fn jobs_table(jobs: &[pb::Job]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let v = JobView::from(j);
            let state = if v.failure.is_empty() { v.state.to_string() } else { format!("{} ({})", v.state, v.failure) };
            vec![
                v.id.to_string(),
                state,
                v.attempt.to_string(),
                format!("{}x{}", v.n_layer, v.d_model),
                si(v.n as f64),
                si(v.batch_tokens as f64),
                v.dataset_tokens.map_or("all".into(), |d| si(d as f64)),
                format!("{}/{}", v.step, v.total_steps),
                si(v.tokens as f64),
                loss(v.train_loss.unwrap_or(f64::NAN)),
                loss(v.val_loss.unwrap_or(f64::NAN)),
                if v.tokens_per_s > 0.0 { si(v.tokens_per_s) } else { "-".into() },
                duration(v.eta_s.unwrap_or(f64::NAN)),
            ]
        })
        .collect();
    render(&["JOB", "STATE", "ATT", "SHAPE", "N", "B", "D", "STEP", "TOKENS", "TRAIN", "VAL", "TOK/S", "ETA"], &rows)
}

#[derive(Serialize)]
pub struct SweepView {
    pub id: u64,
    pub name: String,
    pub state: &'static str,
    pub dataset: String,
    pub dataset_sha256: String,
    pub jobs_total: u32,
    pub jobs_queued: u32,
    pub jobs_running: u32,
    pub jobs_succeeded: u32,
    pub jobs_failed: u32,
    pub jobs_cancelled: u32,
    pub created_ms: i64,
}

impl From<&pb::Sweep> for SweepView {
    fn from(s: &pb::Sweep) -> Self {
        SweepView {
            id: s.id,
            name: s.name.clone(),
            state: sweep_state(s.state),
            dataset: s.dataset.clone(),
            dataset_sha256: s.dataset_sha256.clone(),
            jobs_total: s.jobs_total,
            jobs_queued: s.jobs_queued,
            jobs_running: s.jobs_running,
            jobs_succeeded: s.jobs_succeeded,
            jobs_failed: s.jobs_failed,
            jobs_cancelled: s.jobs_cancelled,
            created_ms: s.created_ms,
        }
    }
}

pub fn sweeps_table(sweeps: &[pb::Sweep]) -> String {
    let rows: Vec<Vec<String>> = sweeps
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.name.clone(),
                sweep_state(s.state).into(),
                s.dataset.clone(),
                s.jobs_total.to_string(),
                s.jobs_queued.to_string(),
                s.jobs_running.to_string(),
                s.jobs_succeeded.to_string(),
                s.jobs_failed.to_string(),
                s.jobs_cancelled.to_string(),
            ]
        })
        .collect();
    render(&["ID", "NAME", "STATE", "DATASET", "JOBS", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"], &rows)
}

#[derive(Serialize)]
pub struct WorkerView {
    pub id: String,
    pub name: String,
    pub slots: Vec<String>,
    pub last_seen_ms: i64,
    pub running_jobs: Vec<u64>,
}

impl From<&pb::WorkerInfo> for WorkerView {
    fn from(w: &pb::WorkerInfo) -> Self {
        WorkerView {
            id: w.id.clone(),
            name: w.name.clone(),
            slots: w.slots.clone(),
            last_seen_ms: w.last_seen_ms,
            running_jobs: w.running_jobs.clone(),
        }
    }
}

pub fn workers_table(workers: &[pb::WorkerInfo], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = workers
        .iter()
        .map(|w| {
            let jobs: Vec<String> = w.running_jobs.iter().map(u64::to_string).collect();
            vec![
                w.id.clone(),
                w.slots.join(","),
                format!("{} ago", duration((now_ms - w.last_seen_ms).max(0) as f64 / 1000.0)),
                if jobs.is_empty() { "-".into() } else { jobs.join(",") },
            ]
        })
        .collect();
    render(&["WORKER", "SLOTS", "LAST SEEN", "RUNNING"], &rows)
}

#[derive(Serialize)]
pub struct DatasetView {
    pub name: String,
    pub sha256: String,
    pub train_tokens: u64,
    pub val_tokens: u64,
    pub vocab: u32,
    pub tokenizer: String,
}

impl From<&pb::Dataset> for DatasetView {
    fn from(d: &pb::Dataset) -> Self {
        DatasetView {
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            train_tokens: d.train_tokens,
            val_tokens: d.val_tokens,
            vocab: d.vocab,
            tokenizer: d.tokenizer.clone(),
        }
    }
}

pub fn datasets_table(ds: &[pb::Dataset]) -> String {
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                si(d.train_tokens as f64),
                si(d.val_tokens as f64),
                d.vocab.to_string(),
                d.tokenizer.clone(),
                d.sha256.chars().take(12).collect(),
            ]
        })
        .collect();
    render(&["NAME", "TRAIN", "VAL", "VOCAB", "TOKENIZER", "SHA256"], &rows)
}
