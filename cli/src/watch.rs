//! `ladder watch`: one progress bar per job with its loss, fed by the WatchJobs stream; returns
//! when every job of the sweep has ended. Without a terminal, one line per job state change.
use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ladder_proto::pb;
use tokio_stream::StreamExt;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::table::{duration, loss, si};
use crate::views::{eta_s, failure, is_final, job_state};

fn message(j: &pb::Job) -> String {
    let train = if j.step > 0 { j.train_loss } else { f64::NAN };
    let mut m = format!("{:<9} train {} val {}", job_state(j.state), loss(train), loss(j.val_loss));
    if j.tokens_per_s > 0.0 && !is_final(j) {
        m.push_str(&format!(" {} tok/s eta {}", si(j.tokens_per_s), duration(eta_s(j))));
    }
    if j.attempt > 1 {
        m.push_str(&format!(" attempt {}", j.attempt));
    }
    let f = failure(j.failure);
    if !f.is_empty() {
        m.push_str(&format!(" ({f}: {})", j.failure_message));
    }
    m
}

fn label(j: &pb::Job) -> String {
    format!("job {:>3} {}x{} N={}", j.id, j.n_layer, j.d_model, si(j.n_params as f64))
}

/// Follows the sweep until every job has ended; returns the final jobs.
pub async fn watch(client: &mut Client, sweep: &str) -> Result<Vec<pb::Job>> {
    let mut stream = client.watch_jobs(pb::WatchJobsRequest { sweep: sweep.to_string() }).await?.into_inner();
    let tty = std::io::stderr().is_terminal();
    let multi =
        MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .map_err(|e| CliError::Other(format!("progress style: {e}")))?
        .progress_chars("=> ");
    let mut jobs: BTreeMap<u64, pb::Job> = BTreeMap::new();
    let mut bars: BTreeMap<u64, ProgressBar> = BTreeMap::new();
    // The stream starts with every job of the sweep, then sends changes.
    let total = crate::commands::sweep(client, sweep).await?.jobs_total as usize;
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
        bar.set_position(j.step.min(j.total_steps));
        bar.set_message(message(&j));
        if !tty && prev_state != Some(j.state) {
            eprintln!("{} {}", label(&j), message(&j));
        }
        jobs.insert(j.id, j);
        if jobs.len() >= total && jobs.values().all(is_final) {
            break;
        }
    }
    for b in bars.values() {
        b.abandon();
    }
    if jobs.len() < total || !jobs.values().all(is_final) {
        return Err(CliError::Other("the coordinator closed the watch before the sweep ended".into()));
    }
    Ok(jobs.into_values().collect())
}
