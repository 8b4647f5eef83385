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

/// The demo sweep on branches: a constant-rate trunk for each of 8 sizes (2.7 decades of N),
/// cooldowns at 8 D, batch windows for the CBS; byte-level Moby-Dick.
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
    let signal = signals();
    let cfg = ladder_coordinator::Config {
        lease_ttl: Duration::from_secs(20),
        data_dir: Some(dir.join("coordinator")),
        // The slots are fixed: a job none can hold is refused at submit, not left waiting.
        refuse_unplaceable: true,
        ..Default::default()
    };
    let (worker_stop, server_stop) = (CancellationToken::new(), CancellationToken::new());
    let page_listener = tokio::net::TcpListener::bind(&args.http_listen)
        .await
        .map_err(|e| CliError::io(format!("binding --http-listen {}", args.http_listen), e))?;
    let page = page_listener.local_addr().map_err(|e| CliError::io("reading the page's address", e))?;
    let listeners = ladder_coordinator::Listeners { grpc: listener, metrics: None, web: Some(page_listener) };
    let server = tokio::spawn(ladder_coordinator::serve_all(store, cfg, listeners, server_stop.clone()));
    let url = format!("http://{addr}");
    let mut worker_cfg =
        ladder_worker::WorkerConfig::new(url.clone(), "local".into(), slots(args), dir.join("worker"), trainer.clone());
    worker_cfg.fuse = args.fuse;
    // Idle slots ask again every 2 s, so that a Ctrl-C waits out no longer poll.
    worker_cfg.acquire_wait = Duration::from_secs(2);
    let worker_ended = CancellationToken::new();
    let ended = worker_ended.clone();
    let run = ladder_worker::run(worker_cfg, worker_stop.clone());
    let worker = tokio::spawn(async move {
        let r = run.await;
        ended.cancel();
        r
    });
    eprintln!("ladder local: coordinator at {url}, state in {}", dir.display());

    let page = format!("http://{page}");
    let ctx = Drive {
        url: &url,
        page: &page,
        trainer: &trainer,
        dir: &dir,
        shutdown: &signal,
        worker_ended: &worker_ended,
        began,
    };
    let result = drive(args, output, &ctx).await;
    if args.serve && !signal.is_cancelled() {
        // The page and the coordinator stay up for what went wrong, too (a fit with too few
        // points, a failed job); the error is still the exit status.
        if let Err(e) = &result {
            eprintln!("ladder local: {e:#}");
        }
        eprintln!(
            "ladder local: serving at {url} (LADDER_COORDINATOR={url} ladder status), the page at {page}/; Ctrl-C stops"
        );
        signal.cancelled().await;
    }
    stop(worker, worker_stop, server, server_stop).await;
    result
}

/// Cancelled on Ctrl-C (SIGINT) or SIGTERM.
fn signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            t.cancel();
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
    token
}

/// How long the worker may take to checkpoint, upload and release before its trainers are
/// killed; the coordinator then stops too, within the 10 s an interrupted `ladder local` takes.
const WORKER_STOP: Duration = Duration::from_secs(7);
const SERVER_STOP: Duration = Duration::from_secs(2);

/// Stops the worker first (its trainers checkpoint, upload and release their leases while the
/// coordinator still answers), then the coordinator; each within its time.
async fn stop(
    mut worker: tokio::task::JoinHandle<ladder_worker::error::Result<()>>,
    worker_stop: CancellationToken,
    mut server: tokio::task::JoinHandle<ladder_coordinator::error::Result<()>>,
    server_stop: CancellationToken,
) {
    worker_stop.cancel();
    match tokio::time::timeout(WORKER_STOP, &mut worker).await {
        Ok(Ok(Err(e))) => eprintln!("ladder local: worker: {e}"),
        Ok(_) => {}
        Err(_) => {
            // Dropping the task kills its trainers; they resume from their last checkpoints.
            worker.abort();
            eprintln!("ladder local: the worker did not stop within {WORKER_STOP:?}; its trainers were killed");
        }
    }
    server_stop.cancel();
    match tokio::time::timeout(SERVER_STOP, &mut server).await {
        Ok(Ok(Err(e))) => eprintln!("ladder local: coordinator: {e}"),
        Ok(_) => {}
        Err(_) => {
            server.abort();
            eprintln!("ladder local: the coordinator did not stop within {SERVER_STOP:?}");
        }
    }
}

/// What `drive` runs against: the local coordinator and worker.
struct Drive<'a> {
    url: &'a str,
    /// The live page's origin.
    page: &'a str,
    trainer: &'a Path,
    dir: &'a Path,
    shutdown: &'a CancellationToken,
    /// Cancelled when the local worker's task ended (it failed to start, say).
    worker_ended: &'a CancellationToken,
    began: std::time::Instant,
}

/// Waits until the local worker has registered its slots, so that the coordinator can judge
/// whether each job of the spec fits them.
async fn worker_registered(client: &Client, ctx: &Drive<'_>) -> Result<()> {
    let since_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .saturating_sub(i64::try_from(ctx.began.elapsed().as_millis()).unwrap_or(0) + 1000);
    loop {
        if client.workers().await?.iter().any(|w| w.name == "local" && w.last_seen_ms >= since_ms) {
            return Ok(());
        }
        tokio::select! {
            _ = ctx.worker_ended.cancelled() => {
                return Err(CliError::Other("the local worker stopped before it registered (its error is above)".into()));
            }
            _ = ctx.shutdown.cancelled() => return Err(CliError::Interrupted),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// A sweep's predictions once locked: the coordinator locks them as the last fitted run ends,
/// which may be a moment after the sweep's own end.
async fn locked_predictions(client: &Client, sweep: &str) -> Result<ladder_analysis::sealed::Predictions> {
    for _ in 0..600 {
        let p = client.predictions(sweep).await?;
        if p.lock.is_some() {
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.predictions(sweep).await
}

async fn drive(args: &LocalArgs, output: Output, ctx: &Drive<'_>) -> Result<()> {
    let (trainer, dir, shutdown, began) = (ctx.trainer, ctx.dir, ctx.shutdown, ctx.began);
    let client = connect_retrying(ctx.url).await?;
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
        Some(p) => {
            let text = crate::commands::read_text(p)?;
            // A spec on the demo's dataset (the benches' specs) gets it as the demo does.
            if ladder_core::sweep::spec_dataset(&text).as_deref() == Some(DEMO_DATASET) {
                demo_dataset(&client, args, trainer, dir).await?;
            }
            (text, p.display().to_string())
        }
        None => {
            demo_dataset(&client, args, trainer, dir).await?;
            (DEMO_SPEC.to_string(), "the built-in demo spec".to_string())
        }
    };
    worker_registered(&client, ctx).await?;
    let sweep = client.submit(spec_text, &origin).await?;
    eprintln!("ladder local: sweep {} ({} jobs) on {}", sweep.name, sweep.jobs.total, slots(args).join(","));
    eprintln!("ladder local: page at {}/sweeps/{}", ctx.page, sweep.name);
    let started = std::time::Instant::now();
    let jobs = tokio::select! {
        r = crate::watch::watch(&client, &sweep.name) => r?,
        _ = shutdown.cancelled() => return Err(CliError::Interrupted),
    };
    eprintln!(
        "ladder local: sweep ended after {:.0} s ({:.1} s since ladder started)",
        started.elapsed().as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    let (_, _, inputs) = crate::gather::sweep_inputs(&client, &sweep.name).await?;
    // The demo checks its own extrapolation: every law refitted without the largest model.
    let opts = Options {
        bootstrap: 200,
        cheap_resamples: ladder_analysis::options::CHEAP_RESAMPLES,
        holdout: args.spec.is_none().then_some(1),
        ..Default::default()
    };
    let report = ladder_analysis::fit_all(&inputs, &opts)?;
    match output {
        Output::Json => crate::commands::emit(output, &report, String::new)?,
        Output::Table => print!("{}", crate::report::text(&report, false)),
    }
    if output == Output::Table && jobs.iter().any(|j| j.sealed) {
        print!("\n{}", crate::report_sealed::text(&locked_predictions(&client, &sweep.name).await?));
    }
    let out = args.out.clone().unwrap_or_else(|| dir.join("plots").join(&sweep.name));
    let files = crate::plot::plot_all(&inputs, &report, &out)?;
    eprintln!("ladder local: wrote {} plots to {}", files.len(), out.display());
    crate::finish(jobs).map_err(|e| match e {
        CliError::JobsFailed(m) => CliError::JobsFailed(format!("sweep {}: {m}", sweep.name)),
        other => other,
    })
}
