//! What the CLI shows of sweeps, jobs, workers and datasets: each a table made from the domain
//! view the coordinator reports, whose serde form is the `--output json` output.
use ladder_core::status::{CheckpointList, DatasetInfo, JobStatus, SweepStatus, WorkerStatus};
use serde::Serialize;

use crate::table::{duration, loss, render, si};

/// A job in `--output json`: its status and the time left at its current rate.
#[derive(Serialize)]
pub struct JobJson<'a> {
    #[serde(flatten)]
    pub job: &'a JobStatus,
    pub eta_s: Option<f64>,
}

impl<'a> From<&'a JobStatus> for JobJson<'a> {
    fn from(job: &'a JobStatus) -> Self {
        JobJson { job, eta_s: job.eta_s() }
    }
}

/// The jobs in `--output json`.
pub fn jobs_json(jobs: &[JobStatus]) -> Vec<JobJson<'_>> {
    jobs.iter().map(JobJson::from).collect()
}

/// The state column: the state, with the failure's kind.
pub fn state_label(j: &JobStatus) -> String {
    match &j.failure {
        Some(f) => format!("{} ({})", j.state.name(), f.kind.describe()),
        None => j.state.name().to_string(),
    }
}

pub fn jobs_table(jobs: &[JobStatus]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let p = &j.progress;
            vec![
                j.id.to_string(),
                state_label(j),
                j.attempt.to_string(),
                j.shape_label(),
                si(j.accounting.n as f64),
                si(j.batch_tokens as f64),
                j.dataset_tokens.map_or("all".into(), |d| si(d as f64)),
                format!("{}/{}", p.step, j.total_steps),
                si(p.tokens as f64),
                if j.sealed { "sealed".into() } else { loss(p.train_loss.unwrap_or(f64::NAN)) },
                if j.sealed { "sealed".into() } else { loss(p.val_loss.unwrap_or(f64::NAN)) },
                if p.tokens_per_s > 0.0 { si(p.tokens_per_s) } else { "-".into() },
                duration(j.eta_s().unwrap_or(f64::NAN)),
                j.branch.as_ref().map_or("-".into(), |b| b.label()),
            ]
        })
        .collect();
    render(
        &["JOB", "STATE", "ATT", "SHAPE", "N", "B", "D", "STEP", "TOKENS", "TRAIN", "VAL", "TOK/S", "ETA", "FROM"],
        &rows,
    )
}

/// A job's checkpoints: step, attempt, size, hash and why each is kept; then the policy.
pub fn checkpoints_table(l: &CheckpointList) -> String {
    let rows: Vec<Vec<String>> = l
        .checkpoints
        .iter()
        .map(|c| {
            vec![
                c.step.to_string(),
                c.attempt.to_string(),
                crate::table::bytes(c.bytes),
                c.sha256.chars().take(12).collect(),
                c.kept.join("; "),
            ]
        })
        .collect();
    let p = &l.policy;
    format!(
        "{}retention: newest {}, best {} by val loss, final {}, branch points until their branches end; {} deleted\n",
        render(&["STEP", "ATT", "SIZE", "SHA256", "KEPT BECAUSE"], &rows),
        p.keep_latest,
        p.keep_best,
        if p.keep_final { "kept" } else { "not kept" },
        l.deleted
    )
}

pub fn sweeps_table(sweeps: &[SweepStatus]) -> String {
    let rows: Vec<Vec<String>> = sweeps
        .iter()
        .map(|s| {
            let c = s.jobs;
            vec![
                s.id.to_string(),
                s.name.clone(),
                s.state.name().into(),
                s.dataset.clone(),
                c.total.to_string(),
                c.queued.to_string(),
                c.running.to_string(),
                c.succeeded.to_string(),
                c.failed.to_string(),
                c.cancelled.to_string(),
            ]
        })
        .collect();
    render(&["ID", "NAME", "STATE", "DATASET", "JOBS", "QUEUED", "RUNNING", "DONE", "FAILED", "CANCELLED"], &rows)
}

pub fn workers_table(workers: &[WorkerStatus], now_ms: i64) -> String {
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

pub fn datasets_table(ds: &[DatasetInfo]) -> String {
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
