//! Curves out: one job's (`ladder curves`) or a whole sweep's (`ladder export`), as CSV or JSON
//! lines, every point with its job's coordinates.
use std::io::Write;
use std::path::Path;

use ladder_proto::pb;
use serde::Serialize;

use crate::args::Format;
use crate::client::Client;
use crate::commands::jobs;
use crate::error::{CliError, Result};

/// One row of an export.
#[derive(Serialize)]
pub struct Row {
    pub job: u64,
    pub n_layer: u32,
    pub d_model: u32,
    pub n: u64,
    pub batch_tokens: u64,
    pub dataset_tokens: u64,
    pub seed: u64,
    pub attempt: u32,
    pub step: u64,
    pub tokens: u64,
    pub flops: f64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub lr: f64,
    pub grad_norm: f64,
    pub b_simple: Option<f64>,
    pub tokens_per_s: f64,
}

/// A job's whole curve, page by page.
pub async fn curve(client: &mut Client, job_id: u64) -> Result<Vec<pb::MetricPoint>> {
    let mut points = Vec::new();
    let mut after_step = 0;
    loop {
        let page = client.get_curve(pb::GetCurveRequest { job_id, after_step, limit: 0 }).await?.into_inner();
        points.extend(page.points);
        if page.next_after_step == 0 {
            return Ok(points);
        }
        after_step = page.next_after_step;
    }
}

fn rows(job: &pb::Job, points: &[pb::MetricPoint]) -> Vec<Row> {
    points
        .iter()
        .map(|p| Row {
            job: job.id,
            n_layer: job.n_layer,
            d_model: job.d_model,
            n: job.n_params,
            batch_tokens: job.batch_tokens,
            dataset_tokens: job.dataset_tokens,
            seed: job.seed,
            attempt: p.attempt,
            step: p.step,
            tokens: p.tokens,
            flops: p.flops,
            train_loss: p.train_loss,
            val_loss: p.val_loss,
            lr: p.lr,
            grad_norm: p.grad_norm,
            b_simple: p.b_simple,
            tokens_per_s: p.tokens_per_s,
        })
        .collect()
}

fn write_rows(out: &mut dyn Write, rows: &[Row], format: Format, header: bool) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().has_headers(header).from_writer(out);
            for r in rows {
                w.serialize(r).map_err(std::io::Error::other)?;
            }
            w.flush()
        }
        Format::Jsonl => {
            for r in rows {
                let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
    }
}

fn sink(out: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| CliError::io(format!("creating {}", p.display()), e))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

pub async fn export_job(client: &mut Client, job_id: u64, format: Format, out: Option<&Path>) -> Result<()> {
    let job = client.get_job(pb::GetJobRequest { job_id }).await?.into_inner();
    let points = curve(client, job_id).await?;
    let mut w = sink(out)?;
    write_rows(&mut w, &rows(&job, &points), format, true)
        .and_then(|_| w.flush())
        .map_err(|e| CliError::io("writing the curve", e))
}

pub async fn export_sweep(client: &mut Client, key: &str, format: Format, out: Option<&Path>) -> Result<()> {
    let js = jobs(client, key).await?;
    let mut w = sink(out)?;
    for (i, job) in js.iter().enumerate() {
        let points = curve(client, job.id).await?;
        write_rows(&mut w, &rows(job, &points), format, i == 0).map_err(|e| CliError::io("writing curves", e))?;
    }
    w.flush().map_err(|e| CliError::io("writing curves", e))
}
