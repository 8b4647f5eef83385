//! The command line, declared with clap.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "ladder", version, about = "Scaling-law sweeps: submit, watch, fit, plot", propagate_version = true)]
pub struct Cli {
    /// The coordinator's address.
    #[arg(long, global = true, env = "LADDER_COORDINATOR", default_value = "http://127.0.0.1:7070")]
    pub coordinator: String,
    /// Bearer token, when the coordinator requires one (prefer the environment variable).
    #[arg(long, global = true, env = "LADDER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA (PEM) of the coordinator's TLS certificate (for https:// addresses).
    #[arg(long, global = true, env = "LADDER_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key (PEM), when the coordinator requires mTLS.
    #[arg(long, global = true, env = "LADDER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for --tls-cert.
    #[arg(long, global = true, env = "LADDER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Output format of listings and reports.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// The connection flags (id, long name): every command but `local` talks to a coordinator
/// through them.
const CONNECTION: [(&str, &str); 5] = [
    ("coordinator", "coordinator"),
    ("token", "token"),
    ("tls_ca", "tls-ca"),
    ("tls_cert", "tls-cert"),
    ("tls_key", "tls-key"),
];

impl Cli {
    /// The command line, with the connection flags hidden from `ladder local --help` (it runs its
    /// own coordinator and uses none of them): `local` declares them itself, hidden, so the
    /// global ones are not propagated to it.
    pub fn command_line() -> clap::Command {
        use clap::CommandFactory;
        Self::command().mut_subcommand("local", |local| {
            local.args(CONNECTION.map(|(id, long)| clap::Arg::new(id).long(long).num_args(1).hide(true)))
        })
    }

    /// Parses this process's arguments (exits with clap's message and code on bad ones).
    pub fn from_env() -> Self {
        use clap::FromArgMatches;
        let matches = Self::command_line().get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokenizer {
    Byte,
    Gpt2,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Submit a sweep spec (TOML).
    Submit {
        spec: PathBuf,
        /// Then watch it until it ends.
        #[arg(long)]
        watch: bool,
    },
    /// Sweeps, or one sweep with its jobs.
    Status { sweep: Option<String> },
    /// The jobs of a sweep: state, attempt, step, tokens, losses, tokens/s, ETA.
    Jobs { sweep: String },
    /// Live progress of a sweep's jobs; returns when the sweep ends.
    Watch { sweep: String },
    /// One job's curve.
    Curves {
        /// The job's id (see `ladder jobs SWEEP`).
        job: u64,
        /// CSV with a header, or one JSON object per line.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A job's log: its trainers' stderr and its workers' events, attempt by attempt.
    Logs {
        /// The job's id (see `ladder jobs SWEEP`).
        job: u64,
        /// Keep printing new lines until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Every curve of a sweep, one row per point, with each job's coordinates.
    Export {
        /// The sweep's name or id.
        sweep: String,
        /// CSV with a header, or one JSON object per line.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The checkpoints a job keeps, and why its sweep's retention policy keeps each; with
    /// `--fetch STEP --out DIR`, downloads one and unpacks it into DIR.
    Checkpoints {
        /// The job's id (see `ladder jobs SWEEP`).
        job: u64,
        /// Download the checkpoint at this step (0: the newest kept).
        #[arg(long, requires = "out")]
        fetch: Option<u64>,
        /// An empty or new folder to unpack the fetched checkpoint into.
        #[arg(long, requires = "fetch")]
        out: Option<PathBuf>,
    },
    /// Cancel every job of a sweep that has not ended.
    Cancel { sweep: String },
    /// Registered workers.
    Workers,
    /// Datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Fit the scaling laws to a sweep, or to points in a CSV file.
    Fit(FitArgs),
    /// A sweep's sealed targets: each law's locked prediction with its 95% interval, the naive
    /// baselines, and once a target has ended its measured loss, error and coverage.
    Predict {
        /// The sweep's name or id.
        sweep: String,
        /// Lock the predictions now, fitted on every job that is not a target (the coordinator
        /// locks by itself once all of those have ended); refused once a target has been read.
        #[arg(long)]
        lock: bool,
    },
    /// Write the plots of a sweep (SVG and PNG).
    Plot {
        sweep: String,
        /// Folder for the plots.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
    },
    /// Run a coordinator and a worker in this process; without a spec, the built-in demo.
    Local(LocalArgs),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Register a dataset: text files to tokenize, or a folder with nanoGPT train.bin/val.bin.
    Add {
        /// The dataset's name, as specs name it.
        name: String,
        /// Text files, folders of *.txt files, or one folder with train.bin and val.bin.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// How text is turned into tokens: bytes, or GPT-2's BPE.
        #[arg(long, value_enum, default_value_t = Tokenizer::Gpt2)]
        tokenizer: Tokenizer,
        /// Share of each text held out for validation.
        #[arg(long, default_value_t = 0.005)]
        val_fraction: f64,
        /// Replace invalid UTF-8 instead of refusing it.
        #[arg(long)]
        lossy_utf8: bool,
        /// Vocabulary of plain .bin files without meta.json.
        #[arg(long)]
        vocab: Option<u32>,
        /// The ladder-train binary that tokenizes (default: beside this one).
        #[arg(long, env = "LADDER_TRAINER")]
        trainer: Option<PathBuf>,
    },
    /// Registered datasets.
    List,
}

#[derive(Args, Debug, Default, Clone)]
pub struct FitArgs {
    /// The sweep to fit (name or id).
    pub sweep: Option<String>,
    /// Fit points from a CSV file instead: a loss column and any of N, D, C, B, S (common names
    /// such as `params`, `Model Size`, `tokens`, `Training FLOP` are recognised).
    #[arg(long, conflicts_with = "sweep")]
    pub csv: Option<PathBuf>,
    /// Which CSV column holds which variable, e.g. `N=params,C=flops,loss=val_loss`.
    #[arg(long, requires = "csv")]
    pub columns: Option<String>,
    /// Extrapolate the fitted laws, e.g. N=1e9,D=2e10.
    #[arg(long)]
    pub predict: Option<String>,
    /// Compute-optimal N, D and B for this many FLOPs, e.g. 1e21.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Fit L(N), L(D), L(C), L(C_min) and L(N,D) with an irreducible term E (L = E + …).
    /// Default: each law keeps E only where it lowers the AICc on the points fitted.
    #[arg(long, conflicts_with = "no_floor")]
    pub floor: bool,
    /// Fit those laws without E: Kaplan et al. 2020's forms.
    #[arg(long)]
    pub no_floor: bool,
    /// Leave out the K highest-loss points from the Chinchilla fit.
    #[arg(long, default_value_t = 0)]
    pub exclude_top: usize,
    /// Leave model sizes with fewer layers than this out of every fit (default 2: 1-layer
    /// models fall off the deeper models' trend, Kaplan et al. 2020 Fig. 6; 1 keeps every size).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_layers: Option<u32>,
    /// Bootstrap resamples for the intervals (the one-variable laws and Chinchilla, whose
    /// resamples are cheap, draw at least 1000).
    #[arg(long, default_value_t = 200)]
    pub bootstrap: usize,
    /// Fit each law on all but the K largest model sizes (the frontier: below their compute) and
    /// report the prediction error on the held-out runs: the check before trusting an extrapolation.
    #[arg(long)]
    pub holdout: Option<usize>,
    /// Refit each law on the k smallest model sizes, for every k from 3, and predict every larger
    /// size: the error against the distance in decades of N and of compute, beside persistence's,
    /// and how often the 95% prediction intervals held the measured loss.
    #[arg(long)]
    pub backtest: bool,
    /// Laws that must be fitted; one the data cannot support is an error instead of a line
    /// under "Not fitted".
    #[arg(long, value_delimiter = ',', value_enum, hide_possible_values = true, help = law_help())]
    pub law: Vec<ladder_laws::Law>,
    /// The critical batch size rule's token overhead: the largest batch whose window needs at
    /// most this fraction more tokens than the k = 1 window to reach its end loss (default 0.2).
    #[arg(long)]
    pub cbs_overhead: Option<f64>,
    /// Also list each run's streamed B_simple and every run that came from a branch.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--law`'s help, with the values it takes (each law's own clap name).
fn law_help() -> String {
    let names: Vec<String> = ladder_laws::Law::ALL
        .iter()
        .filter_map(|l| l.to_possible_value().map(|v| format!("{} ({l})", v.get_name())))
        .collect();
    format!(
        "Laws that must be fitted, e.g. nd,chinchilla; an error, not a note, when one cannot be: {}",
        names.join(", ")
    )
}

#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// A sweep spec; without one, the built-in demo.
    pub spec: Option<PathBuf>,
    /// State folder (default: ladder/local in the user's data directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Worker slots: cpu, cuda:0, … (default: one `cpu` slot per core; CPU jobs that fix no
    /// `threads` share the cores and grow as others finish).
    #[arg(long, value_delimiter = ',')]
    pub slots: Vec<String>,
    /// Most jobs one slot trains at once as one fused model (for sweeps with `resources.fuse`).
    #[arg(long, default_value_t = 1)]
    pub fuse: u32,
    /// The ladder-train binary (default: beside this one).
    #[arg(long, env = "LADDER_TRAINER")]
    pub trainer: Option<PathBuf>,
    /// Folder for the plots (default: plots/ in the data dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Demo only: the Moby-Dick text folder, instead of fetching it with scripts/fetch-corpus.sh.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Keep serving after the sweep ends (Ctrl-C stops), so other `ladder` commands can attach.
    #[arg(long)]
    pub serve: bool,
    /// Register a dataset first: NAME=PATH, PATH a text file, a folder of *.txt files (each split
    /// into train and validation) or a prepared folder (repeatable).
    #[arg(long = "dataset", value_name = "NAME=PATH")]
    pub datasets: Vec<String>,
    /// Tokenizer for --dataset text files.
    #[arg(long, value_enum, default_value_t = Tokenizer::Gpt2)]
    pub tokenizer: Tokenizer,
    /// Listen address of the embedded coordinator.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Address of the live web page (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http_listen: String,
}
