//! `ladder-cli`: the user's side of ladder. The `ladder` binary is a thin shell over [`run`].
pub mod args;
pub mod client;
pub mod commands;
pub mod csvin;
pub mod data;
pub mod error;
pub mod export;
pub mod fit;
pub mod holdout;
pub mod inputs;
pub mod local;
pub mod plot;
pub mod report;
pub mod table;
pub mod views;
pub mod watch;

use args::{Cli, Command, DataCommand, Output};
use error::{CliError, Result};
use serde::Serialize;

#[derive(Serialize)]
struct FitOutput<'a> {
    report: &'a fit::Report,
    predictions: Option<std::collections::BTreeMap<String, f64>>,
    budget: Option<report::Allocation>,
    /// Predictions outside the ranges the laws were fitted over.
    warnings: Vec<String>,
}

async fn fit_cmd(cli: &Cli, a: &args::FitArgs, plot_to: Option<&std::path::Path>) -> Result<()> {
    let inputs = match (&a.sweep, &a.csv) {
        (_, Some(path)) => csvin::read(path)?,
        (Some(key), None) => {
            let mut c = client::connect(&cli.coordinator, cli.token.as_deref(), &tls(cli)).await?;
            inputs::from_sweep(&mut c, key).await?.2
        }
        (None, None) => return Err(CliError::input("ladder fit", "name a sweep, or pass --csv FILE")),
    };
    let report = fit::fit_all(&inputs, a)?;
    let predictions = a.predict.as_deref().map(|p| report::predict(&report, p)).transpose()?;
    let budget = a.budget.map(|c| report::budget(&report, c)).transpose()?;
    let mut warnings = match a.predict.as_deref() {
        Some(p) => report::predict_warnings(&report, p)?,
        None => Vec::new(),
    };
    if let Some(b) = &budget {
        warnings.extend(report::budget_warnings(&report, b));
    }
    if let Some(dir) = plot_to {
        let files = plot::plot_all(&inputs, &report, dir)?;
        for f in &files {
            println!("{}", f.display());
        }
        return Ok(());
    }
    match cli.output {
        Output::Json => {
            commands::emit(cli.output, &FitOutput { report: &report, predictions, budget, warnings }, String::new)
        }
        Output::Table => {
            print!("{}", report::text(&report));
            if let Some(p) = predictions {
                println!("\nPredictions at {}:", a.predict.as_deref().unwrap_or(""));
                for (law, v) in p {
                    println!("  {law:<12} {v:.4}");
                }
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
            let mut c = connect().await?;
            let s = commands::submit(&mut c, spec).await?;
            commands::emit(cli.output, &views::SweepView::from(&s), || views::sweeps_table(std::slice::from_ref(&s)))?;
            if *watch {
                finish(watch::watch(&mut c, &s.name).await?)?;
            }
            Ok(())
        }
        Command::Status { sweep } => commands::status(&mut connect().await?, sweep.as_deref(), cli.output).await,
        Command::Jobs { sweep } => commands::list_jobs(&mut connect().await?, sweep, cli.output).await,
        Command::Watch { sweep } => {
            let jobs = watch::watch(&mut connect().await?, sweep).await?;
            if cli.output == Output::Json {
                let v: Vec<views::JobView> = jobs.iter().map(views::JobView::from).collect();
                commands::emit(cli.output, &v, String::new)?;
            } else {
                print!("{}", views::jobs_table(&jobs));
            }
            finish(jobs)
        }
        Command::Curves { job, format, out } => {
            export::export_job(&mut connect().await?, *job, *format, out.as_deref()).await
        }
        Command::Export { sweep, format, out } => {
            export::export_sweep(&mut connect().await?, sweep, *format, out.as_deref()).await
        }
        Command::Cancel { sweep } => commands::cancel(&mut connect().await?, sweep, cli.output).await,
        Command::Workers => commands::workers(&mut connect().await?, cli.output).await,
        Command::Data(DataCommand::List) => commands::datasets(&mut connect().await?, cli.output).await,
        Command::Data(DataCommand::Add { name, paths, tokenizer, val_fraction, lossy_utf8, vocab, trainer }) => {
            let mut c = connect().await?;
            let ds = data::add(&mut c, name, paths, *tokenizer, *val_fraction, *lossy_utf8, *vocab, trainer.as_deref())
                .await?;
            commands::emit(cli.output, &views::DatasetView::from(&ds), || {
                views::datasets_table(std::slice::from_ref(&ds))
            })
        }
        Command::Fit(a) => fit_cmd(&cli, a, None).await,
        Command::Plot { sweep, out } => {
            let a = args::FitArgs { sweep: Some(sweep.clone()), bootstrap: 200, ..Default::default() };
            fit_cmd(&cli, &a, Some(out)).await
        }
        Command::Local(a) => local::local(a, cli.output).await,
        Command::Completions { .. } => Ok(()),
    }
}

/// A sweep that ended with failed or cancelled jobs is an error for scripts.
fn finish(jobs: Vec<ladder_proto::pb::Job>) -> Result<()> {
    let bad: Vec<String> = jobs
        .iter()
        .filter(|j| views::job_state(j.state) != "succeeded")
        .map(|j| format!("job {} {}", j.id, views::job_state(j.state)))
        .collect();
    if bad.is_empty() { Ok(()) } else { Err(CliError::JobsFailed(bad.join(", "))) }
}
