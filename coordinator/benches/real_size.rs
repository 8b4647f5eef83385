//! The real-size benchmark (`bash bench/real_size.sh`): the real coordinator process holding one
//! sweep of real size, from simulated workers on loopback (no libtorch): by default 500 jobs of
//! 40,000 points each (20M points), ten 4 MiB checkpoints a job (20 GiB uploaded), log lines with
//! every report, one browser tab on the sweep's page (its first load, then its event stream) and
//! the live fits running (the tab's GetFits every 10 s keeps the sweep watched).
//!
//! It prints, in one run: the coordinator's peak RSS and its RSS at 10%, 50% and 100% of the
//! points; Heartbeat and ReportEvents p50/p99 over the whole run; the final refit's time and the
//! RSS while it ran; the store's size on disk against the bytes the retention policy keeps plus
//! the points; and, when Chromium and playwright-core are installed (`scripts/browser-test.sh`
//! installs them), the time to first paint of the sweep's page at 50% and at 100%.
//!
//! LADDER_BENCH_JOBS, LADDER_BENCH_POINTS (per job), LADDER_BENCH_CHECKPOINTS (per job),
//! LADDER_BENCH_CHECKPOINT_MIB, LADDER_BENCH_WORKERS set the size; LADDER_BENCH_COORDINATOR runs
//! another coordinator binary (an older commit's: before/after). A coordinator that dies (out
//! of memory or disk) is reported with the points it had taken. Under `cargo test` a small smoke
//! pass runs.
#[path = "common.rs"]
mod common;
#[path = "load_page.rs"]
mod page;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

struct Size {
    jobs: u64,
    points: u64,
    checkpoints: u64,
    checkpoint_bytes: usize,
    workers: usize,
    /// Points per report, and log lines with each.
    report: u64,
    logs: u64,
    /// Points per second from all workers together (0: as fast as the coordinator takes them).
    rate: u64,
}

fn env(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn size() -> Size {
    let full = std::env::args().any(|a| a == "--bench");
    let (jobs, points, ckpts, mib, workers) = if full { (500, 40_000, 10, 4, 50) } else { (6, 2_000, 2, 1, 3) };
    Size {
        jobs: env("LADDER_BENCH_JOBS", jobs),
        points: env("LADDER_BENCH_POINTS", points),
        checkpoints: env("LADDER_BENCH_CHECKPOINTS", ckpts),
        checkpoint_bytes: (env("LADDER_BENCH_CHECKPOINT_MIB", mib) as usize) << 20,
        workers: env("LADDER_BENCH_WORKERS", workers as u64) as usize,
        report: 500,
        logs: 2,
        rate: env("LADDER_BENCH_RATE", if full { 40_000 } else { 0 }),
    }
}

/// What the run measured, shared by its tasks.
#[derive(Default)]
struct Run {
    points: AtomicU64,
    uploaded: AtomicU64,
    heartbeat: Mutex<Vec<f64>>,
    report: Mutex<Vec<f64>>,
    done: AtomicBool,
    /// A call failed for good (the coordinator died): why.
    failed: Mutex<Option<String>>,
}

/// A point of a job with N parameters: L = 1.8 + 3 (N/10^4)^-0.3 + 8/√step, with noise.
fn metric_point(step: u64, n: f64) -> pb::MetricPoint {
    let s = step as f64;
    let floor = 1.8 + 3.0 * (n / 1e4).powf(-0.3);
    pb::MetricPoint {
        step,
        tokens: step * 65_536,
        flops: s * 6.0 * 1e7 * 65_536.0,
        flops_exact: s * 6.2 * 1e7 * 65_536.0,
        train_loss: floor + 8.0 / s.sqrt() + 0.01 * ((step * 7919) % 13) as f64 / 13.0,
        val_loss: (step % 100 == 0).then(|| floor + 0.05 + 8.0 / s.sqrt()),
        lr: 3e-4,
        grad_norm: 0.9,
        gns_small_sq: 1.5,
        gns_big_sq: 1.2,
        b_small: 8192,
        b_big: 65_536,
        b_simple: Some(30_000.0 + s),
        tokens_per_s: 1e6,
        attempt: 0,
    }
}

fn events(from: u64, to: u64, logs: u64, n: f64) -> Vec<pb::AttemptEvent> {
    let mut out: Vec<pb::AttemptEvent> = (from..=to)
        .map(|k| pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Metrics(metric_point(k, n))) })
        .collect();
    for i in 0..logs {
        let text = format!("step {to}: loss {:.4} ({} of {logs})", 2.0 + 8.0 / (to as f64).sqrt(), i + 1);
        out.push(pb::AttemptEvent {
            kind: Some(pb::attempt_event::Kind::Log(pb::AttemptLog { source: "trainer".into(), text, at_ms: 0 })),
        });
    }
    out
}

async fn fail(run: &Run, what: String) {
    let mut g = run.failed.lock().await;
    if g.is_none() {
        eprintln!("real_size: {what}");
        *g = Some(what);
    }
}

/// One simulated worker: acquires jobs until none is left, reports each one's points in reports
/// of `size.report`, uploads its checkpoints, and finishes it; heartbeats every second.
async fn worker(addr: String, w: usize, size: Arc<Size>, run: Arc<Run>, blob: Arc<Vec<u8>>, n: Arc<HashMap<u64, f64>>) {
    let mut client = WorkerServiceClient::new(channel(&addr))
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let id = register(&mut client, w).await;
    let current: Arc<Mutex<Option<(u64, u32)>>> = Arc::default();
    let beat = {
        let (mut c, id, current, run) = (client.clone(), id.clone(), current.clone(), run.clone());
        tokio::spawn(async move {
            while !run.done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let running =
                    current.lock().await.iter().map(|&(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect();
                let t = Instant::now();
                if c.heartbeat(pb::HeartbeatRequest { worker_id: id.clone(), running }).await.is_ok() {
                    run.heartbeat.lock().await.push(ms(t));
                }
            }
        })
    };
    let every = size.points / size.checkpoints.max(1);
    // Paced: this worker's share of the rate, by its own count of points sent.
    let (began, mut sent) = (Instant::now(), 0u64);
    let per_worker = size.rate as f64 / size.workers as f64;
    loop {
        if run.failed.lock().await.is_some() {
            break;
        }
        let req = pb::AcquireRequest { worker_id: id.clone(), slot: "cpu".into(), wait_ms: 1000, ..Default::default() };
        let a = match client.acquire(req).await {
            Ok(r) => match r.into_inner().assignment {
                Some(a) => a,
                // Every point is in: the sweep is done.
                None if run.points.load(Ordering::Relaxed) >= size.jobs * size.points => break,
                None => continue,
            },
            Err(e) => {
                fail(&run, format!("Acquire failed: {e}")).await;
                break;
            }
        };
        *current.lock().await = Some((a.job_id, a.attempt));
        let mut step = 0;
        while step < size.points {
            let to = (step + size.report).min(size.points);
            let req = pb::ReportEventsRequest {
                worker_id: id.clone(),
                job_id: a.job_id,
                attempt: a.attempt,
                events: events(step + 1, to, size.logs, n.get(&a.job_id).copied().unwrap_or(1e5)),
            };
            let t = Instant::now();
            if let Err(e) = client.report_events(req).await {
                fail(&run, format!("ReportEvents failed at {} points: {e}", run.points.load(Ordering::Relaxed))).await;
                return;
            }
            run.report.lock().await.push(ms(t));
            run.points.fetch_add(to - step, Ordering::Relaxed);
            sent += to - step;
            if per_worker > 0.0 {
                tokio::time::sleep_until((began + Duration::from_secs_f64(sent as f64 / per_worker)).into()).await;
            }
            // A checkpoint at each multiple of `every` just reported.
            if to / every > step / every && size.checkpoints > 0 {
                let at = to / every * every;
                let mut bytes = blob.as_ref().clone();
                bytes[..8].copy_from_slice(&(a.job_id * 1_000_000 + at).to_le_bytes());
                let header = pb::CheckpointHeader {
                    worker_id: id.clone(),
                    job_id: a.job_id,
                    attempt: a.attempt,
                    step: at,
                    total_bytes: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                };
                let mut msgs = vec![pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(header)) }];
                msgs.extend(
                    bytes
                        .chunks(1 << 20)
                        .map(|c| pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(c.to_vec())) }),
                );
                match client.upload_checkpoint(tokio_stream::iter(msgs)).await {
                    Ok(_) => {
                        run.uploaded.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => {
                        fail(
                            &run,
                            format!(
                                "UploadCheckpoint failed after {} bytes: {e}",
                                run.uploaded.load(Ordering::Relaxed)
                            ),
                        )
                        .await;
                        return;
                    }
                }
            }
            step = to;
        }
        let fin = pb::AttemptEvent {
            kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished {
                step: size.points,
                reason: "steps".into(),
            })),
        };
        let req =
            pb::ReportEventsRequest { worker_id: id.clone(), job_id: a.job_id, attempt: a.attempt, events: vec![fin] };
        if let Err(e) = client.report_events(req).await {
            fail(&run, format!("finishing job {}: {e}", a.job_id)).await;
            return;
        }
        *current.lock().await = None;
    }
    beat.abort();
}

/// The time to first paint of the sweep's page in headless Chromium (`web/test/paint.mjs`):
/// (first contentful paint, curves drawn) in ms, or why it could not be measured.
fn first_paint(url: &str) -> Result<(f64, f64), String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let node_dir = std::env::var("LADDER_NODE_DIR").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        std::env::var("LADDER_CACHE").map_or(format!("{home}/.cache/ladder/node"), |c| format!("{c}/node"))
    });
    let out = std::process::Command::new("node")
        .arg(format!("{root}/web/test/paint.mjs"))
        .arg(url)
        .env("LADDER_NODE_DIR", node_dir)
        .output()
        .map_err(|e| format!("node: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|_| format!("paint.mjs: {}", String::from_utf8_lossy(&out.stderr).trim()))?;
    Ok((v["fcp_ms"].as_f64().unwrap_or(f64::NAN), v["drawn_ms"].as_f64().unwrap_or(f64::NAN)))
}

/// Bytes of every file under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => du(&e.path()),
                    Ok(m) => {
                        use std::os::unix::fs::MetadataExt;
                        m.blocks() * 512
                    }
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn mib(b: f64) -> f64 {
    b / (1u64 << 20) as f64
}

/// Registers the dataset and submits the sweep: ten sizes, as many seeds of each as the job count
/// asks. Returns each job's N and the size with its real job count.
async fn submit(users: &mut LadderClient<tonic::transport::Channel>, size: Size) -> (HashMap<u64, f64>, Size) {
    let tokens = ladder_testkit::data::cycle_tokens(10_000, 100);
    let msgs = ladder_testkit::data::upload("bench", tokens.clone(), tokens, 128);
    users.register_dataset(tokio_stream::iter(msgs)).await.expect("dataset");
    let shapes = "[[1, 32], [2, 32], [2, 48], [2, 64], [3, 64], [4, 64], [4, 96], [4, 128], [6, 128], [8, 128]]";
    let seeds: Vec<String> = (0..size.jobs.div_ceil(10)).map(|s| s.to_string()).collect();
    let spec = format!(
        "name = \"real\"\ndataset = \"bench\"\nseeds = [{}]\n[model]\nn_ctx = 64\nd_head = 16\nshapes = {shapes}\n[train]\nbatch_tokens = 1024\nsteps = {}\nlr = 0.001\n[resources]\ndevice = \"cpu\"\n",
        seeds.join(", "),
        size.points
    );
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let listed = users.list_jobs(pb::ListJobsRequest { sweep: "real".into() }).await.expect("jobs").into_inner().jobs;
    let n = listed.iter().map(|j| (j.id, j.n_params as f64)).collect();
    (n, Size { jobs: listed.len() as u64, ..size })
}

/// What watching the run saw: RSS at 10/50/100% of the points (with when), the page's paint at
/// 50%, the peak RSS, and the points done when the coordinator died, if it did.
#[derive(Default)]
struct Watched {
    marks: Vec<(u64, f64, f64)>,
    paint_mid: Option<Result<(f64, f64), String>>,
    peak: f64,
    died: Option<u64>,
}

/// Samples the coordinator's RSS every 500 ms until every point is in (or it died).
async fn follow(coord: &Coordinator, run: &Run, total: u64, page_addr: &str, began: Instant) -> Watched {
    let mut w = Watched::default();
    while run.points.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss, hwm) = coord.rss_mib();
        if !rss.is_finite() {
            w.died = Some(run.points.load(Ordering::Relaxed));
            break;
        }
        w.peak = w.peak.max(hwm);
        let done = run.points.load(Ordering::Relaxed);
        for pct in [10, 50] {
            if done * 100 >= total * pct && !w.marks.iter().any(|m| m.0 == pct) {
                w.marks.push((pct, rss, began.elapsed().as_secs_f64()));
                println!(
                    "real_size: {pct}% of the points after {:.0} s: RSS {rss:.0} MiB",
                    began.elapsed().as_secs_f64()
                );
                if pct == 50 {
                    w.paint_mid = Some(first_paint(&format!("http://{page_addr}/sweeps/real")));
                }
            }
        }
        if run.failed.lock().await.is_some() {
            break;
        }
    }
    w
}

/// The latencies and RSS of the run.
async fn print_run(run: &Run, w: &Watched) {
    let mut hb = run.heartbeat.lock().await.clone();
    let mut rep = run.report.lock().await.clone();
    println!(
        "  Heartbeat p50 {:.1} ms, p99 {:.1} ms ({} calls); ReportEvents p50 {:.1} ms, p99 {:.1} ms ({} calls)",
        pct(&mut hb, 0.5),
        pct(&mut hb, 0.99),
        hb.len(),
        pct(&mut rep, 0.5),
        pct(&mut rep, 0.99),
        rep.len()
    );
    for (p, rss, at) in &w.marks {
        println!("  RSS at {p:>3}% of the points ({at:.0} s): {rss:.0} MiB");
    }
    println!("  peak RSS {:.0} MiB", w.peak);
    if let (Some(a), Some(b)) = (w.marks.iter().find(|m| m.0 == 10), w.marks.iter().find(|m| m.0 == 100)) {
        println!("  RSS at 100% / RSS at 10% = {:.2}", b.1 / a.1);
    }
}

/// The sweep's final fit: waits for the one that saw every job ended, and prints its time and
/// the coordinator's peak RSS while it ran (sampled every 20 ms).
async fn final_fit(coord: &Coordinator, page_addr: &str) {
    let t = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pid, stop) = (coord.pid(), stop.clone());
        tokio::spawn(async move {
            let mut top = 0.0f64;
            while !stop.load(Ordering::Relaxed) {
                top = top.max(status_mib(pid, "VmRSS:"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            top
        })
    };
    let mut fits = page_json(page_addr, "/api/sweeps/real/fits").await;
    for _ in 0..600 {
        let text = fits.to_string();
        if !text.contains("still queued") && !text.contains("still running") && fits != serde_json::Value::Null {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        fits = page_json(page_addr, "/api/sweeps/real/fits").await;
    }
    let took = fits["took_ms"].as_f64().unwrap_or(f64::NAN);
    if let Some(e) = fits["error"].as_str() {
        println!("  the final fit failed: {e}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let top = sampler.await.unwrap_or(f64::NAN);
    println!(
        "  the final fit: {took:.0} ms over {} points summarised ({:.0} ms to answer); peak RSS while it ran {top:.0} MiB",
        fits["points"].as_u64().unwrap_or(0),
        ms(t)
    );
}

/// Bytes a folder's files take on disk (the filesystem's blocks, not their lengths).
fn blocks(path: &std::path::Path, pick: &dyn Fn(&std::path::Path) -> bool) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(path)
        .map(|d| d.flatten().filter(|e| pick(&e.path())).map(|e| e.metadata().map_or(0, |m| m.blocks() * 512)).sum())
        .unwrap_or(0)
}

/// The store on disk, once the janitor is done, against what the policy keeps plus the points.
async fn store_on_disk(coord: &Coordinator, users: &mut LadderClient<tonic::transport::Channel>, points: u64) {
    let mut kept = 0u64;
    let jobs = users.list_jobs(pb::ListJobsRequest { sweep: "real".into() }).await.expect("jobs").into_inner().jobs;
    for j in &jobs {
        match users.list_checkpoints(pb::ListCheckpointsRequest { job_id: j.id }).await {
            Ok(l) => kept += l.into_inner().checkpoints.iter().map(|c| c.bytes).sum::<u64>(),
            Err(e) => println!("  ListCheckpoints for job {}: {e}", j.id),
        }
    }
    let point_bytes = points * 119;
    // Deleted checkpoints' files go once their deletion is durable: wait until the folder stops
    // shrinking for longer than the janitor's period (10 s), at most 120 s.
    let mut disk = du(coord.dir.path());
    let mut still = 0;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = du(coord.dir.path());
        still = if now == disk { still + 1 } else { 0 };
        disk = now;
        if still >= 15 {
            break;
        }
    }
    let redb = blocks(coord.dir.path(), &|p| p.extension().is_some_and(|x| x == "redb"));
    // The disk guard's ballast, a fixed reserve it frees when the disk fills, is not the store.
    let ballast = blocks(coord.dir.path(), &|p| p.file_name().is_some_and(|n| n == "ballast"));
    let disk = disk - ballast;
    println!(
        "  the store file {:.0} MiB, checkpoint files {:.0} MiB (and the disk guard's ballast, {:.0} MiB)",
        mib(redb as f64),
        mib((disk - redb) as f64),
        mib(ballast as f64)
    );
    println!(
        "  store on disk {:.0} MiB; checkpoints kept {:.0} MiB + points {:.0} MiB ({points} × 119 bytes) = {:.0} MiB; ratio {:.2}",
        mib(disk as f64),
        mib(kept as f64),
        mib(point_bytes as f64),
        mib((kept + point_bytes) as f64),
        disk as f64 / (kept + point_bytes) as f64
    );
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let size = size();
    println!(
        "real_size: {} jobs × {} points = {} points, {} checkpoints of {} MiB a job ({:.1} GiB), {} workers, {} points/s",
        size.jobs,
        size.points,
        size.jobs * size.points,
        size.checkpoints,
        size.checkpoint_bytes >> 20,
        (size.jobs * size.checkpoints * size.checkpoint_bytes as u64) as f64 / (1u64 << 30) as f64,
        size.workers,
        if size.rate == 0 { "as many".to_string() } else { size.rate.to_string() }
    );
    // An older coordinator (before/after) knows no disk guard.
    let old = std::env::var_os("LADDER_BENCH_OLD_FORMAT").is_some();
    let coord = Coordinator::spawn(None, true, if old { &[] } else { &["--min-free-bytes", "1073741824"] });
    let addr = coord.addr.clone();
    let page_addr = coord.page.clone().expect("the page's address");
    let mut users = LadderClient::new(channel(&addr));
    let (n, size) = submit(&mut users, size).await;
    let (n, size) = (Arc::new(n), Arc::new(size));
    let total = size.jobs * size.points;

    let run = Arc::new(Run::default());
    let began = Instant::now();
    // The browser tab: the page's first load, then its events; and its fits, every 10 s.
    let tab = tokio::spawn(page::open(page_addr.clone(), "real".into(), Instant::now() + Duration::from_secs(86_400)));
    let watch = {
        let (mut u, run) = (users.clone(), run.clone());
        tokio::spawn(async move {
            while !run.done.load(Ordering::Relaxed) {
                let _ = u.get_fits(pb::GetFitsRequest { sweep: "real".into() }).await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        })
    };
    let blob: Arc<Vec<u8>> = Arc::new((0..size.checkpoint_bytes).map(|i| (i * 31 % 251) as u8).collect());
    let workers: Vec<_> = (0..size.workers)
        .map(|w| tokio::spawn(worker(addr.clone(), w, size.clone(), run.clone(), blob.clone(), n.clone())))
        .collect();

    let mut w = follow(&coord, &run, total, &page_addr, began).await;
    let secs = began.elapsed().as_secs_f64();
    for w in workers {
        let _ = w.await;
    }
    let failure = run.failed.lock().await.clone();
    let whole = failure.is_none() && w.died.is_none();
    if whole {
        let (rss, hwm) = coord.rss_mib();
        w.marks.push((100, rss, secs));
        w.peak = w.peak.max(hwm);
    }
    run.done.store(true, Ordering::Relaxed);
    watch.abort();
    let points = run.points.load(Ordering::Relaxed);
    println!(
        "real_size: {points} points in {secs:.0} s ({:.0} points/s), {:.1} GiB of checkpoints uploaded",
        points as f64 / secs,
        run.uploaded.load(Ordering::Relaxed) as f64 / (1u64 << 30) as f64
    );
    if let Some(n) = w.died {
        println!(
            "real_size: THE COORDINATOR DIED after {n} points ({:.0}% of the run), peak RSS {:.0} MiB",
            100.0 * n as f64 / total as f64,
            w.peak
        );
    }
    if let Some(f) = &failure {
        println!("real_size: the run stopped: {f}");
    }
    print_run(&run, &w).await;
    let mut code = std::process::ExitCode::SUCCESS;
    if whole {
        final_fit(&coord, &page_addr).await;
        store_on_disk(&coord, &mut users, points).await;
        if let Some(p) = &w.paint_mid {
            print_paint("50%", p);
        }
        let paint = first_paint(&format!("http://{page_addr}/sweeps/real"));
        print_paint("100%", &paint);
        // LADDER_BENCH_PAINT_LIMIT_MS: the page must have drawn its curves within this.
        if let Some(limit) = std::env::var("LADDER_BENCH_PAINT_LIMIT_MS").ok().and_then(|v| v.parse::<f64>().ok()) {
            match paint {
                Ok((_, drawn)) if drawn <= limit => println!("  first paint within {limit:.0} ms"),
                other => {
                    println!("real_size: FAILED: the page drew its curves in {other:?} ms, over {limit:.0} ms");
                    code = std::process::ExitCode::FAILURE;
                }
            }
        }
    } else {
        code = std::process::ExitCode::FAILURE;
    }
    tab.abort();
    drop(coord);
    code
}

fn print_paint(at: &str, p: &Result<(f64, f64), String>) {
    match p {
        Ok((fcp, drawn)) => println!(
            "  the sweep's page in Chromium at {at}: first contentful paint {fcp:.0} ms, curves drawn {drawn:.0} ms"
        ),
        Err(why) => println!("  the sweep's page in Chromium at {at}: not measured ({why})"),
    }
}

/// GET a JSON answer of the page.
async fn page_json(addr: &str, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("write");
    let mut body = Vec::new();
    s.read_to_end(&mut body).await.expect("read");
    let text = String::from_utf8_lossy(&body);
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
}
