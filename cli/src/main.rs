//! `ladder`: the command line of ladder. Errors print as `ladder: error: …` with the exit codes
//! of [`ladder_cli::error::exit`].
use std::process::ExitCode;

use ladder_cli::args::{Cli, Command};

fn init_tracing() {
    // The embedded coordinator and worker of `ladder local` log here; warnings only by default.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LADDER_LOG").unwrap_or_else(|_| "warn".into());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // LADDER_LOG_JSON=1: JSON lines, as the coordinator's and the worker's --log-json.
    let json = std::env::var("LADDER_LOG_JSON").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    let _ = if json { fmt.json().try_init() } else { fmt.try_init() };
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::from_env();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command_line(), "ladder", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    init_tracing();
    match ladder_cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("ladder: error: {:#}", anyhow::Error::new(e));
            ExitCode::from(code)
        }
    }
}
