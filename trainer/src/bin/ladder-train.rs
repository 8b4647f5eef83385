//! `ladder-train`: one process = one job attempt. Events go to stdout, one JSON object per line;
//! the exit code tells the failure class (see `FailureKind::exit_code`).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ladder_trainer::events::{Event, FailureKind, PREEMPTED_EXIT_CODE};
use ladder_trainer::tokenizer::Tokenizer;
use ladder_trainer::{JobConfig, Outcome, TrainerError, checkpoint, data, resolve_job, run_until};

#[derive(Parser)]
#[command(name = "ladder-train", version, about = "Train one ladder job attempt (libtorch)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the job in CONFIG, streaming JSON events to stdout.
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Resume from this checkpoint folder, or `auto` for the newest in the checkpoint dir.
        #[arg(long)]
        resume: Option<String>,
        /// Override the config's device (cpu, cuda, cuda:N, auto).
        #[arg(long)]
        device: Option<String>,
        /// Override the config's checkpoint folder.
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
    },
    /// Tokenize text files into OUT/train.bin, OUT/val.bin and OUT/meta.json.
    Prepare {
        /// byte or gpt2.
        #[arg(long, default_value = "gpt2")]
        tokenizer: String,
        #[arg(long)]
        out: PathBuf,
        /// Fraction of each file's tokens kept for validation.
        #[arg(long, default_value_t = 0.01)]
        val_fraction: f64,
        /// Replace invalid UTF-8 with U+FFFD instead of refusing the file (GPT-2 tokenizer).
        #[arg(long)]
        lossy_utf8: bool,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Measure the gradient noise scale B_simple directly at a checkpoint's weights, from many
    /// independent micro-batch gradients (no training step), and print it as JSON.
    Gns {
        #[arg(long)]
        config: PathBuf,
        /// The checkpoint folder (a `step-…` folder).
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 256)]
        micro_batches: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print the job's shape and N/FLOPs accounting as JSON.
    Info {
        #[arg(long)]
        config: PathBuf,
    },
}

fn print_event(e: &Event) {
    let mut out = std::io::stdout().lock();
    // stdout is the event stream: if its reader (the worker) is gone, so is this attempt.
    if writeln!(out, "{}", e.to_json_line()).and_then(|()| out.flush()).is_err() {
        eprintln!("ladder-train: the event stream (stdout) is closed; stopping this attempt");
        std::process::exit(i32::from(FailureKind::Crashed.exit_code()));
    }
}

fn classify(e: &TrainerError) -> FailureKind {
    if e.is_out_of_memory() {
        FailureKind::OutOfMemory
    } else if e.is_invalid_input() {
        FailureKind::InvalidConfig
    } else {
        FailureKind::Crashed
    }
}

fn train(
    config: PathBuf,
    resume: Option<String>,
    device: Option<String>,
    ckpt: Option<PathBuf>,
) -> Result<ExitCode, TrainerError> {
    let mut cfg = JobConfig::load(&config)?;
    if let Some(d) = device {
        cfg.device = d;
    }
    if let Some(c) = ckpt {
        cfg.checkpoint.dir = c;
    }
    let job = resolve_job(&cfg)?;
    let resume_dir = match resume.as_deref() {
        None => None,
        Some("auto") => checkpoint::latest(&cfg.checkpoint.dir),
        Some(p) => Some(PathBuf::from(p)),
    };
    // SIGTERM asks for a checkpoint at the next step boundary, then a clean exit.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
        .map_err(|e| TrainerError::Io { context: "installing the SIGTERM handler".into(), source: e })?;
    match run_until(&job, resume_dir.as_deref(), &stop, &mut print_event)? {
        Outcome::Preempted { step } => {
            print_event(&Event::Preempted { step });
            Ok(ExitCode::from(PREEMPTED_EXIT_CODE))
        }
        Outcome::Finished { step, reason, val_loss } => {
            let tokens = step * job.batch_tokens();
            print_event(&Event::Finished { step, tokens, reason, val_loss });
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Diverged { step, train_loss } => {
            let kind = FailureKind::Diverged;
            print_event(&Event::Failed {
                kind,
                message: format!("diverged: loss {train_loss} at step {step}"),
                step: Some(step),
            });
            Ok(ExitCode::from(kind.exit_code()))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train { config, resume, device, checkpoint_dir } => train(config, resume, device, checkpoint_dir),
        Command::Prepare { tokenizer, out, val_fraction, lossy_utf8, inputs } => Tokenizer::by_name(&tokenizer)
            .and_then(|tok| data::prepare(&inputs, &tok, val_fraction, lossy_utf8, &out))
            .map(|meta| {
                println!("{}", serde_json::to_string_pretty(&meta).unwrap_or_default());
                ExitCode::SUCCESS
            }),
        Command::Gns { config, checkpoint, micro_batches, seed } => JobConfig::load(&config)
            .map_err(TrainerError::from)
            .and_then(|c| resolve_job(&c))
            .and_then(|job| ladder_trainer::gns_probe::probe(&job, &checkpoint, micro_batches, seed))
            .map(|p| {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
                ExitCode::SUCCESS
            }),
        Command::Info { config } => JobConfig::load(&config).map_err(TrainerError::from).and_then(|c| resolve_job(&c)).map(|job| {
            let acct = ladder_trainer::accounting::Accounting::of(&job.shape);
            let info = serde_json::json!({ "shape": job.shape, "accounting": acct, "total_steps": job.total_steps, "peak_lr": job.peak_lr });
            println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
            ExitCode::SUCCESS
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let kind = classify(&e);
            eprintln!("ladder-train: error: {e}");
            print_event(&Event::Failed { kind, message: e.to_string(), step: None });
            ExitCode::from(kind.exit_code())
        }
    }
}
