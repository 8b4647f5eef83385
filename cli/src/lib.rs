//! `ladder-cli`: the user's side of ladder. The `ladder` binary is a thin shell over [`run`].
//!
//! Where each concern lives:
//! - [`args`]: the command line (clap); [`error`]: the one error type and its exit codes;
//! - [`client`]: the connection to the coordinator, in domain types (the only wire code);
//! - [`commands`], [`views`], [`table`]: listings and control, as tables or JSON;
//!   [`watch`]: live progress; [`export`]: curves out as CSV or JSON lines;
//! - [`data`]: registering datasets (tokenized by `ladder-train prepare`);
//! - the fits: [`gather`] (a sweep's jobs and curves) and [`csvin`] (points from a CSV file)
//!   feed `ladder-analysis`; [`report`] prints its results and [`plot`] draws them;
//! - [`local`]: `ladder local`, a coordinator and a worker in this process.
pub mod args;
pub mod client;
pub mod commands;
pub mod csvin;
pub mod data;
pub mod error;
pub mod export;
pub mod fetch;
pub mod gather;
pub mod local;
pub mod logs;
pub mod plot;
pub mod report;
pub mod report_additivity;
pub mod report_branches;
pub mod report_predictions;
pub mod report_sealed;
pub mod table;
pub mod views;
pub mod watch;

use args::{Cli, Command, DataCommand, Output};
use error::{CliError, Result};
use ladder_analysis::predict::{self, Allocation};
use ladder_analysis::{Inputs, Options, Report};
use ladder_core::JobState;
use ladder_core::status::JobStatus;
use serde::Serialize;

#[derive(Serialize)]
struct FitOutput<'a> {
    report: &'a Report,
    /// Each law's prediction with its 95% prediction interval (lo, hi).
    predictions: Option<std::collections::BTreeMap<ladder_laws::Law, ladder_laws::Estimate>>,
    budget: Option<Allocation>,
    /// Predictions outside the ranges the laws were fitted over.
    warnings: Vec<String>,
}

impl From<&args::FitArgs> for Options {
    fn from(a: &args::FitArgs) -> Self {
        Options {
            bootstrap: a.bootstrap,
            cheap_resamples: ladder_analysis::options::CHEAP_RESAMPLES,
            floor: match (a.floor, a.no_floor) {
                (true, _) => ladder_laws::Floor::With,
                (_, true) => ladder_laws::Floor::Without,
                _ => ladder_laws::Floor::Auto,
            },
            exclude_top: a.exclude_top,
            min_layers: a.min_layers,
            holdout: a.holdout,
            backtest: a.backtest,
            law: a.law.clone(),
            cbs_overhead: a.cbs_overhead,
        }
    }
}

async fn fit_inputs(cli: &Cli, a: &args::FitArgs) -> Result<Inputs> {
    match (&a.sweep, &a.csv) {
        (_, Some(path)) => csvin::read(path, a.columns.as_deref()),
        (Some(key), None) => {
            let c = client::connect(&cli.coordinator, cli.token.as_deref(), &tls(cli)).await?;
            Ok(gather::sweep_inputs(&c, key).await?.2)
        }
        (None, None) => Err(CliError::input("ladder fit", "name a sweep, or pass --csv FILE")),
    }
}

/// `ladder fit SWEEP` with the default options on a sweep still running: the coordinator's live
/// fits, at once, instead of gathering every curve and refitting here. None: fit here.
async fn live_report(cli: &Cli, a: &args::FitArgs) -> Result<Option<Report>> {
    let Some(key) = &a.sweep else { return Ok(None) };
    let defaults = a.csv.is_none()
        && !a.floor
        && !a.no_floor
        && a.exclude_top == 0
        && a.min_layers.is_none()
        && a.holdout.is_none()
        && !a.backtest
        && a.law.is_empty()
        && a.cbs_overhead.is_none()
        // Prediction intervals need the bootstrap's resamples, which the live fits do not carry.
        && a.predict.is_none();
    if !defaults {
        return Ok(None);
    }
    let c = client::connect(&cli.coordinator, cli.token.as_deref(), &tls(cli)).await?;
    if c.sweep(key).await?.state != ladder_core::SweepState::Running {
        return Ok(None);
    }
    let Ok(json) = c.fits(key).await? else { return Ok(None) };
    let report: Report =
        serde_json::from_str(&json).map_err(|e| CliError::Other(format!("reading sweep {key}'s live fits: {e}")))?;
    eprintln!(
        "ladder: sweep {key} is running: these are the coordinator's live fits (fewer bootstrap resamples); \
         the full fit runs here once it ends"
    );
    Ok(Some(report))
}

async fn fit_cmd(cli: &Cli, a: &args::FitArgs, plot_to: Option<&std::path::Path>) -> Result<()> {
    if plot_to.is_none()
        && let Some(report) = live_report(cli, a).await?
    {
        return print_fit(cli, a, &report);
    }
    let inputs = fit_inputs(cli, a).await?;
    let report = ladder_analysis::fit_all(&inputs, &Options::from(a))?;
    if let Some(dir) = plot_to {
        for f in plot::plot_all(&inputs, &report, dir)? {
            println!("{}", f.display());
        }
        return Ok(());
    }
    print_fit(cli, a, &report)
}

/// The report, with the predictions and the budget asked for, as text or JSON.
fn print_fit(cli: &Cli, a: &args::FitArgs, report: &Report) -> Result<()> {
    let predictions = a.predict.as_deref().map(|p| predict::predict(report, p)).transpose()?;
    let budget = a.budget.map(|c| predict::budget(report, c)).transpose()?;
    let mut warnings = match a.predict.as_deref() {
        Some(p) => predict::predict_warnings(report, p)?,
        None => Vec::new(),
    };
    if let Some(b) = &budget {
        warnings.extend(predict::budget_warnings(report, b));
    }
    match cli.output {
        Output::Json => commands::emit(cli.output, &FitOutput { report, predictions, budget, warnings }, String::new),
        Output::Table => {
            print!("{}", report::text(report, a.verbose));
            if let Some(p) = predictions {
                print!("{}", report_predictions::predictions_text(a.predict.as_deref().unwrap_or(""), &p));
            }
            if let Some(b) = budget {
                print!("{}", report::allocation_text(&b));
            }
            for w in &warnings {
                eprintln!("ladder: warning: {w}");
            }
            Ok(())
        }
    }
}

fn tls(cli: &Cli) -> ladder_proto::tls::ClientTls {
    ladder_proto::tls::ClientTls {
        ca: cli.tls_ca.clone(),
        cert: cli.tls_cert.clone(),
        key: cli.tls_key.clone(),
        domain: None,
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    let tls = tls(&cli);
    let connect = || client::connect(&cli.coordinator, cli.token.as_deref(), &tls);
    match &cli.command {
        Command::Submit { spec, watch } => {
            let c = connect().await?;
            let s = commands::submit(&c, spec).await?;
            commands::emit(cli.output, &s, || views::sweeps_table(std::slice::from_ref(&s)))?;
            if *watch {
                finish(watch::watch(&c, &s.name).await?)?;
            }
            Ok(())
        }
        Command::Status { sweep } => commands::status(&connect().await?, sweep.as_deref(), cli.output).await,
        Command::Jobs { sweep } => commands::list_jobs(&connect().await?, sweep, cli.output).await,
        Command::Watch { sweep } => {
            let jobs = watch::watch(&connect().await?, sweep).await?;
            commands::emit(cli.output, &views::jobs_json(&jobs), || views::jobs_table(&jobs))?;
            finish(jobs)
        }
        Command::Curves { job, format, out } => {
            export::export_job(&connect().await?, *job, *format, out.as_deref()).await
        }
        Command::Logs { job, follow } => logs::print(&connect().await?, *job, *follow, cli.output).await,
        Command::Export { sweep, format, out } => {
            export::export_sweep(&connect().await?, sweep, *format, out.as_deref()).await
        }
        Command::Cancel { sweep } => commands::cancel(&connect().await?, sweep, cli.output).await,
        Command::Checkpoints { job, fetch: Some(step), out: Some(out) } => {
            commands::fetch_checkpoint(&connect().await?, *job, *step, out).await
        }
        Command::Checkpoints { job, .. } => commands::checkpoints(&connect().await?, *job, cli.output).await,
        Command::Workers => commands::workers(&connect().await?, cli.output).await,
        Command::Data(DataCommand::List) => commands::datasets(&connect().await?, cli.output).await,
        Command::Data(DataCommand::Add { name, paths, tokenizer, val_fraction, lossy_utf8, vocab, trainer }) => {
            let c = connect().await?;
            let ds =
                data::add(&c, name, paths, *tokenizer, *val_fraction, *lossy_utf8, *vocab, trainer.as_deref()).await?;
            commands::emit(cli.output, &ds, || views::datasets_table(std::slice::from_ref(&ds)))
        }
        Command::Fit(a) => fit_cmd(&cli, a, None).await,
        Command::Predict { sweep, lock } => {
            let c = connect().await?;
            let p = if *lock { c.lock_predictions(sweep).await? } else { c.predictions(sweep).await? };
            commands::emit(cli.output, &p, || report_sealed::text(&p))
        }
        Command::Plot { sweep, out } => {
            let a = args::FitArgs { sweep: Some(sweep.clone()), bootstrap: 200, ..Default::default() };
            fit_cmd(&cli, &a, Some(out)).await
        }
        Command::Local(a) => local::local(a, cli.output).await,
        Command::Completions { .. } => Ok(()),
    }
}

/// A sweep that ended with failed or cancelled jobs is an error for scripts.
pub fn finish(jobs: Vec<JobStatus>) -> Result<()> {
    let bad: Vec<String> = jobs
        .iter()
        .filter(|j| j.state != JobState::Succeeded)
        .map(|j| format!("job {} {}", j.id, j.state.name()))
        .collect();
    if bad.is_empty() { Ok(()) } else { Err(CliError::JobsFailed(bad.join(", "))) }
}
