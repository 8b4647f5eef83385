//! `ladder watch`: one progress bar per job with its loss, fed by the coordinator's job updates;
//! returns when every job of the sweep has ended. Without a terminal, one line per job state
//! change.
use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ladder_core::status::JobStatus;
use tokio_stream::StreamExt;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::table::{duration, loss, si};

fn message(j: &JobStatus) -> String {
    let p = &j.progress;
    let mut m = format!(
        "{:<9} train {} val {}",
        j.state.name(),
        loss(p.train_loss.unwrap_or(f64::NAN)),
        loss(p.val_loss.unwrap_or(f64::NAN))
    );
    if p.tokens_per_s > 0.0 && !j.state.is_final() {
        m.push_str(&format!(" {} tok/s eta {}", si(p.tokens_per_s), duration(j.eta_s().unwrap_or(f64::NAN))));
    }
    if j.attempt > 1 {
        m.push_str(&format!(" attempt {}", j.attempt));
    }
    if let Some(f) = &j.failure {
        m.push_str(&format!(" ({}: {})", f.kind.describe(), f.message));
    }
    m
}

fn label(j: &JobStatus) -> String {
    format!("job {:>3} {} N={}", j.id, j.shape_label(), si(j.accounting.n as f64))
}

/// Follows the sweep until every job has ended; returns the final jobs.
pub async fn watch(client: &Client, sweep: &str) -> Result<Vec<JobStatus>> {
    let mut stream = client.watch(sweep).await?;
    let tty = std::io::stderr().is_terminal();
    let multi =
        MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .map_err(|e| CliError::Other(format!("progress style: {e}")))?
        .progress_chars("=> ");
    let mut jobs: BTreeMap<u64, JobStatus> = BTreeMap::new();
    let mut bars: BTreeMap<u64, ProgressBar> = BTreeMap::new();
    // The stream starts with every job of the sweep, then sends changes.
    let total = client.sweep(sweep).await?.jobs.total as usize;
    let ended = |jobs: &BTreeMap<u64, JobStatus>| jobs.len() >= total && jobs.values().all(|j| j.state.is_final());
    while let Some(item) = stream.next().await {
        let j = item?;
        let prev_state = jobs.get(&j.id).map(|p| p.state);
        let bar = bars.entry(j.id).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(j.total_steps.max(1)));
            b.set_style(style.clone());
            b.set_prefix(label(&j));
            b
        });
        bar.set_length(j.total_steps.max(1));
        bar.set_position(j.progress.step.min(j.total_steps));
        bar.set_message(message(&j));
        if !tty && prev_state != Some(j.state) {
            eprintln!("{} {}", label(&j), message(&j));
        }
        jobs.insert(j.id, j);
        if ended(&jobs) {
            break;
        }
    }
    for b in bars.values() {
        b.abandon();
    }
    if !ended(&jobs) {
        return Err(CliError::Other("the coordinator closed the watch before the sweep ended".into()));
    }
    Ok(jobs.into_values().collect())
}
