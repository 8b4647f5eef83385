//! Curves out: one job's (`ladder curves`) or a whole sweep's (`ladder export`), as CSV or JSON
//! lines, every point with its job's coordinates.
use std::io::Write;
use std::path::Path;

use ladder_core::status::{JobStatus, RecordedPoint};
use serde::Serialize;

use crate::args::Format;
use crate::client::Client;
use crate::error::{CliError, Result};

/// One row of an export: a recorded point and the coordinates of its job.
#[derive(Serialize)]
pub struct Row {
    pub job: u64,
    pub n_layer: i64,
    pub d_model: i64,
    pub n: u64,
    pub batch_tokens: u64,
    /// D; 0 = all.
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

impl Row {
    pub fn of(job: &JobStatus, p: &RecordedPoint) -> Self {
        let m = &p.point;
        Row {
            job: job.id,
            n_layer: job.shape.n_layer,
            d_model: job.shape.d_model,
            n: job.accounting.n,
            batch_tokens: job.batch_tokens,
            dataset_tokens: job.dataset_tokens.unwrap_or(0),
            seed: job.seed,
            attempt: p.attempt,
            step: m.step,
            tokens: m.tokens,
            flops: m.flops,
            train_loss: m.train_loss,
            val_loss: m.val_loss,
            lr: m.lr,
            grad_norm: m.grad_norm,
            b_simple: m.b_simple,
            tokens_per_s: m.tokens_per_s,
        }
    }
}

fn write_rows(
    out: &mut dyn Write,
    job: &JobStatus,
    points: &[RecordedPoint],
    format: Format,
    header: bool,
) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().has_headers(header).from_writer(out);
            for p in points {
                w.serialize(Row::of(job, p)).map_err(std::io::Error::other)?;
            }
            w.flush()
        }
        Format::Jsonl => {
            for p in points {
                let line = serde_json::to_string(&Row::of(job, p)).map_err(std::io::Error::other)?;
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

pub async fn export_job(client: &Client, job_id: u64, format: Format, out: Option<&Path>) -> Result<()> {
    let job = client.job(job_id).await?;
    let points = client.curve(job_id).await?;
    let mut w = sink(out)?;
    write_rows(&mut w, &job, &points, format, true)
        .and_then(|_| w.flush())
        .map_err(|e| CliError::io("writing the curve", e))
}

pub async fn export_sweep(client: &Client, key: &str, format: Format, out: Option<&Path>) -> Result<()> {
    let (js, sealed): (Vec<_>, Vec<_>) = client.jobs(key).await?.into_iter().partition(|j| !j.sealed);
    if !sealed.is_empty() {
        let ids: Vec<u64> = sealed.iter().map(|j| j.id).collect();
        eprintln!(
            "ladder: left out the sealed targets (jobs {}): `ladder predict {key}` scores them, and `ladder curves JOB` prints one once the predictions are locked",
            crate::table::id_ranges(&ids)
        );
    }
    let mut w = sink(out)?;
    for (i, job) in js.iter().enumerate() {
        let points = client.curve(job.id).await?;
        write_rows(&mut w, job, &points, format, i == 0).map_err(|e| CliError::io("writing curves", e))?;
    }
    w.flush().map_err(|e| CliError::io("writing curves", e))
}
