//! `ladder local [SPEC]`: a coordinator and a worker embedded in this process, the state in the
//! user's data directory. Without a spec it runs the built-in demo: fetch Moby-Dick with the
//! project's script, tokenize it byte-level, sweep model sizes on the CPU, fit and plot.
use std::path::{Path, PathBuf};
use std::time::Duration;

use ladder_analysis::Options;
use tokio_util::sync::CancellationToken;

use crate::args::{LocalArgs, Output, Tokenizer};
use crate::client::{Client, connect};
use crate::error::{CliError, Result};

/// The demo sweep: 5 sizes spanning 1.8 decades of N, byte-level, a fixed token budget each.
pub const DEMO_SPEC: &str = include_str!("../demo/demo.toml");
const DEMO_DATASET: &str = "moby-dick-bytes";

fn data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p.to_path_buf()),
        None => dirs::data_dir()
            .map(|d| d.join("ladder").join("local"))
            .ok_or_else(|| CliError::input("--data-dir", "no user data directory here: pass --data-dir")),
    }
}

/// The project's corpus script: `$LADDER_REPO/scripts/…`, else the checkout this was built from.
fn fetch_script() -> Option<PathBuf> {
    let from_env = std::env::var_os("LADDER_REPO").map(|r| PathBuf::from(r).join("scripts/fetch-corpus.sh"));
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fetch-corpus.sh");
    from_env.into_iter().chain([built]).find(|p| p.is_file())
}

async fn fetch_corpus() -> Result<PathBuf> {
    let script = fetch_script().ok_or_else(|| {
        CliError::input("demo corpus", "scripts/fetch-corpus.sh not found: set LADDER_REPO or pass --corpus DIR")
    })?;
    eprintln!("demo: fetching Moby-Dick with {}", script.display());
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("moby-dick")
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(|e| CliError::io(format!("running {}", script.display()), e))?;
    if !out.status.success() {
        return Err(CliError::Other(format!("{} failed ({})", script.display(), out.status)));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

async fn demo_dataset(client: &Client, args: &LocalArgs, trainer: &Path, dir: &Path) -> Result<()> {
    let have = client.datasets().await?;
    if have.iter().any(|d| d.name == DEMO_DATASET) {
        return Ok(());
    }
    let corpus = match &args.corpus {
        Some(c) => c.clone(),
        None => fetch_corpus().await?,
    };
    let text = corpus.join("data.txt");
    if !text.is_file() {
        return Err(CliError::input(corpus.display().to_string(), "no data.txt here (the Moby-Dick package's text)"));
    }
    let out = dir.join("demo-data");
    eprintln!("demo: tokenizing {} (byte-level)", text.display());
    crate::data::prepare(trainer, &[text], Tokenizer::Byte, 0.02, false, &out).await?;
    let ds = crate::data::upload(client, DEMO_DATASET, &out, None).await?;
    eprintln!("demo: registered {} ({} train tokens, {} val)", ds.name, ds.train_tokens, ds.val_tokens);
    Ok(())
}

async fn connect_retrying(addr: &str) -> Result<Client> {
    let mut last = None;
    for _ in 0..50 {
        match connect(addr, None, &Default::default()).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.unwrap_or_else(|| CliError::Other("connecting to the embedded coordinator".into())))
}

/// The worker's slots: as given, else one `cpu` slot per core. CPU attempts share the cores: a
/// job that fixes no `threads` gets its share and grows as others finish.
fn slots(args: &LocalArgs) -> Vec<String> {
    if !args.slots.is_empty() {
        return args.slots.clone();
    }
    vec!["cpu".to_string(); std::thread::available_parallelism().map_or(1, |n| n.get())]
}

pub async fn local(args: &LocalArgs, output: Output) -> Result<()> {
    let began = std::time::Instant::now();
    let dir = data_dir(args.data_dir.as_deref())?;
    std::fs::create_dir_all(&dir).map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
    let trainer = crate::data::trainer_path(args.trainer.as_deref())?;
    let store = ladder_coordinator::open_store(&dir.join("coordinator"))
        .map_err(|e| CliError::Other(format!("opening the store in {}: {e}", dir.display())))?;
    let listener = ladder_coordinator::bind(&args.listen)
        .await
        .map_err(|e| CliError::io(format!("binding {}", args.listen), e))?;
    let addr = listener.local_addr().map_err(|e| CliError::io("reading the bound address", e))?;
    let shutdown = CancellationToken::new();
    {
        let s = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
    }
    let cfg = ladder_coordinator::Config { lease_ttl: Duration::from_secs(20), ..Default::default() };
    let server = tokio::spawn(ladder_coordinator::serve(store, cfg, listener, shutdown.clone()));
    let url = format!("http://{addr}");
    let mut worker_cfg =
        ladder_worker::WorkerConfig::new(url.clone(), "local".into(), slots(args), dir.join("worker"), trainer.clone());
    worker_cfg.fuse = args.fuse;
    let worker = tokio::spawn(ladder_worker::run(worker_cfg, shutdown.clone()));
    eprintln!("ladder local: coordinator at {url}, state in {}", dir.display());

    let result = drive(args, output, &url, &trainer, &dir, &shutdown, began).await;
    if result.is_ok() && args.serve {
        eprintln!("ladder local: serving at {url} (LADDER_COORDINATOR={url} ladder status); Ctrl-C stops");
        shutdown.cancelled().await;
    }
    shutdown.cancel();
    if let Ok(Err(e)) = worker.await {
        eprintln!("ladder local: worker: {e}");
    }
    if let Ok(Err(e)) = server.await {
        eprintln!("ladder local: coordinator: {e}");
    }
    result
}

async fn drive(
    args: &LocalArgs,
    output: Output,
    url: &str,
    trainer: &Path,
    dir: &Path,
    shutdown: &CancellationToken,
    began: std::time::Instant,
) -> Result<()> {
    let client = connect_retrying(url).await?;
    for d in &args.datasets {
        let (name, path) = d
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(|| CliError::input("--dataset", format!("{d:?}: expected NAME=PATH")))?;
        let paths = [PathBuf::from(path)];
        let ds = crate::data::add(&client, name, &paths, args.tokenizer, 0.05, false, None, Some(trainer)).await?;
        eprintln!("ladder local: dataset {} ({} train tokens)", ds.name, ds.train_tokens);
    }
    let (spec_text, origin) = match &args.spec {
        Some(p) => (crate::commands::read_text(p)?, p.display().to_string()),
        None => {
            demo_dataset(&client, args, trainer, dir).await?;
            (DEMO_SPEC.to_string(), "the built-in demo spec".to_string())
        }
    };
    let sweep = client.submit(spec_text, &origin).await?;
    eprintln!("ladder local: sweep {} ({} jobs) on {}", sweep.name, sweep.jobs.total, slots(args).join(","));
    let started = std::time::Instant::now();
    let jobs = tokio::select! {
        r = crate::watch::watch(&client, &sweep.name) => r?,
        _ = shutdown.cancelled() => return Err(CliError::Other("interrupted; the sweep resumes on the next `ladder local`".into())),
    };
    eprintln!(
        "ladder local: sweep ended after {:.0} s ({:.1} s since ladder started)",
        started.elapsed().as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    let (_, _, inputs) = crate::gather::sweep_inputs(&client, &sweep.name).await?;
    // The demo checks its own extrapolation: every law refitted without the largest model.
    let opts = Options { bootstrap: 200, holdout: args.spec.is_none().then_some(1), ..Default::default() };
    let report = ladder_analysis::fit_all(&inputs, &opts)?;
    match output {
        Output::Json => crate::commands::emit(output, &report, String::new)?,
        Output::Table => print!("{}", crate::report::text(&report)),
    }
    let out = args.out.clone().unwrap_or_else(|| dir.join("plots").join(&sweep.name));
    let files = crate::plot::plot_all(&inputs, &report, &out)?;
    eprintln!("ladder local: wrote {} plots to {}", files.len(), out.display());
    crate::finish(jobs).map_err(|e| match e {
        CliError::JobsFailed(m) => CliError::JobsFailed(format!("sweep {}: {m}", sweep.name)),
        other => other,
    })
}
