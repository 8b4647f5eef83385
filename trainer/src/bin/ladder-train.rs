//! `ladder-train`: one process = one job attempt. Events go to stdout, one JSON object per line;
//! the exit code tells the failure class (see `FailureKind::exit_code`).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::sync::Arc;

use ladder_trainer::events::{Event, FailureKind, MemberEvent, PREEMPTED_EXIT_CODE};
use ladder_trainer::tokenizer::Tokenizer;
use ladder_trainer::{
    Controls, JobConfig, Outcome, TrainerError, checkpoint, data, outcome_event, resolve_job, run_fused, run_until,
};

#[derive(Parser)]
#[command(name = "ladder-train", version, about = "Train one ladder job attempt (libtorch)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the job in CONFIG, streaming JSON events to stdout. Several --config train those
    /// jobs as one fused batched model (same shape and batch); each line then names its member.
    Train {
        #[arg(long, required = true)]
        config: Vec<PathBuf>,
        /// Resume from this checkpoint folder, or `auto` for the newest in the checkpoint dir;
        /// with several configs, one per config in the same order (`none` for a fresh member).
        #[arg(long)]
        resume: Vec<String>,
        /// Override the config's device (cpu, cuda for any GPU, cuda:N, auto).
        #[arg(long)]
        device: Option<ladder_core::job::DeviceRequest>,
        /// Override the config's checkpoint folder (single config only).
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
        /// Intra-op CPU threads to start with (the config's `threads` wins when set).
        #[arg(long)]
        threads: Option<i32>,
        /// Read control commands (JSON lines: threads, drop, stop) from stdin.
        #[arg(long, value_parser = ["stdin"])]
        control: Option<String>,
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
    /// Check that a checkpoint folder is whole (every file against its manifest) and was written
    /// by the job in CONFIG over its dataset; exit 0, or 2 with the reason.
    Verify {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        checkpoint: PathBuf,
    },
    /// Print the CUDA devices as JSON: index, free and total memory in bytes, and whether this
    /// build captures CUDA graphs (an empty list without CUDA).
    Devices,
}

fn print_event(e: &Event) {
    print_line(&e.to_json_line());
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // stdout is the event stream: if its reader (the worker) is gone, so is this attempt.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
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

struct TrainArgs {
    config: Vec<PathBuf>,
    resume: Vec<String>,
    device: Option<ladder_core::job::DeviceRequest>,
    ckpt: Option<PathBuf>,
    threads: Option<i32>,
    control: Option<String>,
}

fn resume_dir(arg: Option<&str>, cfg: &JobConfig) -> Option<PathBuf> {
    match arg {
        None | Some("none") => None,
        Some("auto") => checkpoint::latest(&cfg.checkpoint.dir),
        Some(p) => Some(PathBuf::from(p)),
    }
}

fn train(a: TrainArgs) -> Result<ExitCode, TrainerError> {
    let fused = a.config.len() > 1;
    if fused && a.ckpt.is_some() {
        return Err(TrainerError::Domain(ladder_core::DomainError::invalid(
            "--checkpoint-dir",
            "applies to a single config; fused members keep their configs' folders",
        )));
    }
    if a.resume.len() > a.config.len() || (fused && !a.resume.is_empty() && a.resume.len() != a.config.len()) {
        return Err(TrainerError::Domain(ladder_core::DomainError::invalid(
            "--resume",
            format!(
                "{} given for {} configs: give one per config, in order (`none` for a fresh one)",
                a.resume.len(),
                a.config.len()
            ),
        )));
    }
    let mut jobs = Vec::with_capacity(a.config.len());
    let mut resumes = Vec::with_capacity(a.config.len());
    for (i, path) in a.config.iter().enumerate() {
        let mut cfg = JobConfig::load(path)?;
        if let Some(d) = a.device {
            cfg.device = d;
        }
        if let Some(c) = &a.ckpt {
            cfg.checkpoint.dir = c.clone();
        }
        if cfg.threads.is_none()
            && let Some(t) = a.threads
        {
            cfg.threads = Some(t);
        }
        resumes.push(resume_dir(a.resume.get(i).map(String::as_str), &cfg));
        jobs.push(resolve_job(&cfg)?);
    }
    // SIGTERM asks for a checkpoint at the next step boundary, then a clean exit.
    let controls = Arc::new(Controls::default());
    signal_hook::flag::register(signal_hook::consts::SIGTERM, controls.stop.clone())
        .map_err(|e| TrainerError::Io { context: "installing the SIGTERM handler".into(), source: e })?;
    if a.control.is_some() {
        controls
            .listen_stdin()
            .map_err(|e| TrainerError::Io { context: "starting the control reader".into(), source: e })?;
    }
    if fused {
        let outcomes = run_fused(&jobs, &resumes, &controls, &mut |member, event| {
            print_line(&MemberEvent { member, event: event.clone() }.to_json_line())
        })?;
        let preempted = outcomes.iter().any(|o| matches!(o, Some(Outcome::Preempted { .. })));
        return Ok(if preempted { ExitCode::from(PREEMPTED_EXIT_CODE) } else { ExitCode::SUCCESS });
    }
    let job = &jobs[0];
    let outcome = run_until(job, resumes[0].as_deref(), &controls, &mut print_event)?;
    print_event(&outcome_event(&outcome, job.batch_tokens()));
    Ok(match outcome {
        Outcome::Preempted { .. } => ExitCode::from(PREEMPTED_EXIT_CODE),
        Outcome::Finished { .. } => ExitCode::SUCCESS,
        Outcome::Diverged { .. } => ExitCode::from(FailureKind::Diverged.exit_code()),
    })
}

fn devices() -> Result<ExitCode, TrainerError> {
    let mut list = Vec::new();
    if tch::Cuda::is_available() {
        for i in 0..tch::Cuda::device_count() as usize {
            let (free, total) = ladder_trainer::cuda::mem_info(i)?;
            list.push(serde_json::json!({ "index": i, "free_bytes": free, "total_bytes": total }));
        }
    }
    let out = serde_json::json!({ "cuda_graphs": ladder_trainer::cuda::built(), "devices": list });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train { config, resume, device, checkpoint_dir, threads, control } => {
            train(TrainArgs { config, resume, device, ckpt: checkpoint_dir, threads, control })
        }
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
        Command::Devices => devices(),
        Command::Verify { config, checkpoint } => JobConfig::load(&config)
            .map_err(TrainerError::from)
            .and_then(|c| resolve_job(&c))
            .and_then(|job| ladder_trainer::setup::verify_checkpoint(&job, &checkpoint))
            .map(|step| {
                println!("{}", serde_json::json!({ "step": step }));
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
