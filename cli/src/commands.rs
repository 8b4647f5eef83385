//! The listing and control commands: submit, status, jobs, checkpoints, cancel, workers, data
//! list.
use std::path::Path;

use ladder_core::status::SweepStatus;
use serde::Serialize;

use crate::args::Output;
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::views::*;

/// Prints `value` as JSON or the table `table` renders.
pub fn emit<T: Serialize + ?Sized>(output: Output, value: &T, table: impl FnOnce() -> String) -> Result<()> {
    match output {
        Output::Json => {
            let s = serde_json::to_string_pretty(value).map_err(|e| CliError::Other(format!("encoding JSON: {e}")))?;
            println!("{s}");
        }
        Output::Table => print!("{}", table()),
    }
    Ok(())
}

pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CliError::io(format!("reading {}", path.display()), e))
}

/// Submits the spec in `spec`; its errors name that file.
pub async fn submit(client: &Client, spec: &Path) -> Result<SweepStatus> {
    client.submit(read_text(spec)?, &spec.display().to_string()).await
}

#[derive(Serialize)]
struct SweepWithJobs<'a> {
    sweep: &'a SweepStatus,
    jobs: Vec<JobJson<'a>>,
}

pub async fn status(client: &Client, key: Option<&str>, output: Output) -> Result<()> {
    match key {
        None => {
            let sweeps = client.sweeps().await?;
            emit(output, &sweeps, || sweeps_table(&sweeps))
        }
        Some(k) => {
            let s = client.sweep(k).await?;
            let js = client.jobs(k).await?;
            let value = SweepWithJobs { sweep: &s, jobs: jobs_json(&js) };
            emit(output, &value, || format!("{}\n{}", sweeps_table(std::slice::from_ref(&s)), jobs_table(&js)))
        }
    }
}

pub async fn list_jobs(client: &Client, key: &str, output: Output) -> Result<()> {
    let js = client.jobs(key).await?;
    emit(output, &jobs_json(&js), || jobs_table(&js))
}

pub async fn cancel(client: &Client, key: &str, output: Output) -> Result<()> {
    let s = client.cancel(key).await?;
    emit(output, &s, || sweeps_table(std::slice::from_ref(&s)))
}

pub async fn checkpoints(client: &Client, job: u64, output: Output) -> Result<()> {
    let list = client.checkpoints(job).await?;
    emit(output, &list, || checkpoints_table(&list))
}

/// Downloads a job's checkpoint, checks its sha256, and unpacks it into `out` (new or empty).
pub async fn fetch_checkpoint(client: &Client, job: u64, step: u64, out: &std::path::Path) -> Result<()> {
    let fetched = crate::fetch::checkpoint(client, job, step, out).await?;
    println!(
        "job {job}, step {}: {} files, {} unpacked into {}",
        fetched.step,
        fetched.files.len(),
        crate::table::bytes(fetched.bytes),
        out.display()
    );
    for f in &fetched.files {
        println!("  {f}");
    }
    Ok(())
}

pub async fn workers(client: &Client, output: Output) -> Result<()> {
    let ws = client.workers().await?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    emit(output, &ws, || workers_table(&ws, now))
}

pub async fn datasets(client: &Client, output: Output) -> Result<()> {
    let ds = client.datasets().await?;
    emit(output, &ds, || datasets_table(&ds))
}
