//! A sweep's jobs and curves fetched from the coordinator, as the analysis takes them: every job
//! but its sealed targets.
use ladder_analysis::{Inputs, JobCurve};
use ladder_core::status::{JobStatus, SweepStatus};

use crate::client::Client;
use crate::error::Result;

/// A sweep, its jobs, and what the fits are fed.
pub async fn sweep_inputs(client: &Client, key: &str) -> Result<(SweepStatus, Vec<JobStatus>, Inputs)> {
    let sweep = client.sweep(key).await?;
    // Sealed targets are for `ladder predict`: no fit sees them.
    let jobs: Vec<JobStatus> = client.jobs(key).await?.into_iter().filter(|j| !j.sealed).collect();
    let all_tokens =
        client.datasets().await?.into_iter().find(|d| d.sha256 == sweep.dataset_sha256).map(|d| d.train_tokens);
    let mut curves = Vec::with_capacity(jobs.len());
    for j in &jobs {
        curves.push(client.curve(j.id).await?);
    }
    let pairs: Vec<JobCurve<'_>> = jobs.iter().zip(&curves).map(|(job, points)| JobCurve { job, points }).collect();
    let inputs = Inputs::from_jobs(format!("sweep {}", sweep.name), &pairs, all_tokens);
    Ok((sweep, jobs, inputs))
}
