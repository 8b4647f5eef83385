//! The listing and control commands: submit, status, jobs, cancel, workers, data list.
use std::path::Path;

use ladder_proto::pb;
use serde::Serialize;

use crate::args::Output;
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::views::*;

/// Prints `value` as JSON or the table `table` renders.
pub fn emit<T: Serialize>(output: Output, value: &T, table: impl FnOnce() -> String) -> Result<()> {
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

pub async fn submit(client: &mut Client, spec: &Path) -> Result<pb::Sweep> {
    let spec_toml = read_text(spec)?;
    let resp = client.submit_sweep(pb::SubmitSweepRequest { spec_toml }).await.map_err(|s| {
        // Spec errors come back with line and key; name the file they refer to.
        if s.code() == tonic::Code::InvalidArgument {
            CliError::input(spec.display().to_string(), s.message().to_string())
        } else {
            s.into()
        }
    })?;
    let r = resp.into_inner();
    r.sweep.ok_or_else(|| CliError::Other("the coordinator returned no sweep".into()))
}

pub async fn sweep(client: &mut Client, key: &str) -> Result<pb::Sweep> {
    Ok(client.get_sweep(pb::GetSweepRequest { sweep: key.to_string() }).await?.into_inner())
}

pub async fn jobs(client: &mut Client, key: &str) -> Result<Vec<pb::Job>> {
    Ok(client.list_jobs(pb::ListJobsRequest { sweep: key.to_string() }).await?.into_inner().jobs)
}

#[derive(Serialize)]
struct SweepWithJobs {
    sweep: SweepView,
    jobs: Vec<JobView>,
}

pub async fn status(client: &mut Client, key: Option<&str>, output: Output) -> Result<()> {
    match key {
        None => {
            let mut sweeps = Vec::new();
            let mut after_id = 0;
            loop {
                let page = client.list_sweeps(pb::ListSweepsRequest { page_size: 0, after_id }).await?.into_inner();
                sweeps.extend(page.sweeps);
                if page.next_after_id == 0 {
                    break;
                }
                after_id = page.next_after_id;
            }
            let views: Vec<SweepView> = sweeps.iter().map(SweepView::from).collect();
            emit(output, &views, || sweeps_table(&sweeps))
        }
        Some(k) => {
            let s = sweep(client, k).await?;
            let js = jobs(client, k).await?;
            let value = SweepWithJobs { sweep: SweepView::from(&s), jobs: js.iter().map(JobView::from).collect() };
            emit(output, &value, || format!("{}\n{}", sweeps_table(std::slice::from_ref(&s)), jobs_table(&js)))
        }
    }
}

pub async fn list_jobs(client: &mut Client, key: &str, output: Output) -> Result<()> {
    let js = jobs(client, key).await?;
    let views: Vec<JobView> = js.iter().map(JobView::from).collect();
    emit(output, &views, || jobs_table(&js))
}

pub async fn cancel(client: &mut Client, key: &str, output: Output) -> Result<()> {
    let s = client.cancel_sweep(pb::CancelSweepRequest { sweep: key.to_string() }).await?.into_inner();
    emit(output, &SweepView::from(&s), || sweeps_table(std::slice::from_ref(&s)))
}

pub async fn workers(client: &mut Client, output: Output) -> Result<()> {
    let ws = client.list_workers(pb::ListWorkersRequest {}).await?.into_inner().workers;
    let views: Vec<WorkerView> = ws.iter().map(WorkerView::from).collect();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    emit(output, &views, || workers_table(&ws, now))
}

pub async fn datasets(client: &mut Client, output: Output) -> Result<()> {
    let ds = client.list_datasets(pb::ListDatasetsRequest {}).await?.into_inner().datasets;
    let views: Vec<DatasetView> = ds.iter().map(DatasetView::from).collect();
    emit(output, &views, || datasets_table(&ds))
}
