//! Load benchmark: the real `ladder-coordinator` process with an on-disk store, and simulated
//! workers on loopback in this process (the same cores). Beside raw redb batched inserts measured
//! in the same run on the same disk, it reports:
//!
//! - **paced**: W workers, each with its own connection, a 1 Hz heartbeat and 10 points/s (one
//!   report of 10 points a second), jobs of 100 steps (so W/10 Acquires and Finisheds a second):
//!   durable points/s, p50/p99 of Acquire, Heartbeat and ReportEvents, the coordinator's CPU share
//!   (of one core) and its memory (RSS) over the run;
//! - **saturated**: W workers sending reports back to back: the most durable points/s the
//!   coordinator ingests, as a fraction of raw redb's rate, with reports as full as a worker
//!   sends them once the coordinator is behind (512 points, `ladder_proto::MAX_REPORT_EVENTS`),
//!   then with a paced worker's 10 points (the RPC rate); each run reads back the first jobs'
//!   curves and checks that they hold what the reports said was stored.
//!
//! `cargo bench -p ladder-coordinator --bench load` (or `bash bench/coordinator_load.sh`);
//! LADDER_BENCH_SECS sets the seconds of the paced run (default 30; 600 for the memory check),
//! LADDER_BENCH_WORKERS the worker count (default 1000), LADDER_BENCH_COORDINATOR another
//! coordinator binary (an older commit's, for a before/after table). Under `cargo test` it runs a 2-second
//! smoke pass at 20 workers.
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use prost::Message;

#[path = "common.rs"]
mod common;
#[path = "load_page.rs"]
mod page;
use common::*;
use redb::{Database, TableDefinition};
use tokio::sync::Mutex;
use tonic::transport::Channel;

const POINTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("points");
const STEPS_PER_JOB: u64 = 100;
/// Points per report; one report a second per worker.
const BATCH: u64 = 10;

fn sample_point(step: u64) -> pb::MetricPoint {
    pb::MetricPoint {
        step,
        tokens: step * 65536,
        flops: step as f64 * 1e15,
        flops_exact: step as f64 * 1.1e15,
        train_loss: 3.0 + 1.0 / step as f64,
        val_loss: (step % 20 == 0).then_some(3.1),
        lr: 3e-4,
        grad_norm: 0.9,
        gns_small_sq: 1.5,
        gns_big_sq: 1.2,
        b_small: 8192,
        b_big: 65536,
        b_simple: Some(30000.0),
        tokens_per_s: 1e6,
        attempt: 1,
    }
}

/// Raw redb: durable commits of `batch` points each, the same key and value shapes as curves.
fn raw_redb(dir: &std::path::Path, total: u64, batch: u64) -> f64 {
    std::fs::create_dir_all(dir).expect("mkdir");
    let db = Database::create(dir.join("raw.redb")).expect("create");
    let value = sample_point(1).encode_to_vec();
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        let txn = db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(POINTS).expect("table");
            for i in 0..batch {
                t.insert((n / 1000, n + i), value.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        n += batch;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
    rate
}

/// Registers the dataset and submits `jobs` jobs of `steps` steps each.
async fn prepare(addr: &str, jobs: u64, steps: u64) {
    let mut users = LadderClient::new(channel(addr));
    let tokens = ladder_testkit::data::cycle_tokens(10_000, 100);
    let msgs = ladder_testkit::data::upload("bench", tokens.clone(), tokens, 128);
    users.register_dataset(tokio_stream::iter(msgs)).await.expect("dataset");
    let mut submitted = 0;
    let mut k = 0;
    while submitted < jobs {
        let seeds = (jobs - submitted).min(5000);
        let seeds_list: Vec<String> = (0..seeds).map(|s| s.to_string()).collect();
        let spec = format!(
            "name = \"load-{k}\"\ndataset = \"bench\"\nseeds = [{}]\n[model]\nn_ctx = 64\nd_head = 16\nshapes = [[1, 32]]\n[train]\nbatch_tokens = 1024\nsteps = {steps}\nlr = 0.001\n[resources]\ndevice = \"cpu\"\n",
            seeds_list.join(", ")
        );
        users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
        submitted += seeds;
        k += 1;
    }
}

#[derive(Default)]
struct Latencies {
    acquire: Vec<f64>,
    heartbeat: Vec<f64>,
    report: Vec<f64>,
}

struct Paced {
    points_per_s: f64,
    lat: Latencies,
    cpu_share: f64,
    /// The load generator's (this process's) CPU, cores.
    generator_cpu: f64,
    /// RSS (MiB) sampled through the run: (seconds since start, MiB).
    rss: Vec<(f64, f64)>,
    peak_mib: f64,
    /// What the open page received, when one was open.
    page: Option<page::PageLoad>,
}

async fn acquire(client: &mut WorkerServiceClient<Channel>, id: &str) -> Option<pb::Assignment> {
    let req = pb::AcquireRequest { worker_id: id.to_string(), slot: "cpu".into(), wait_ms: 1000, ..Default::default() };
    client.acquire(req).await.expect("acquire").into_inner().assignment
}

fn points(id: &str, a: &pb::Assignment, from: u64, n: u64) -> pb::ReportEventsRequest {
    let events = (from..from + n)
        .map(|s| pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Metrics(sample_point(s))) })
        .collect();
    pb::ReportEventsRequest { worker_id: id.to_string(), job_id: a.job_id, attempt: a.attempt, events }
}

fn finished(id: &str, a: &pb::Assignment, step: u64) -> pb::ReportEventsRequest {
    let fin = pb::AttemptFinished { step, reason: "steps".into() };
    let events = vec![pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Finished(fin)) }];
    pb::ReportEventsRequest { worker_id: id.to_string(), job_id: a.job_id, attempt: a.attempt, events }
}

/// With `page`: a browser tab has the first sweep's page open throughout.
async fn paced(workers: usize, secs: u64, page: bool) -> Paced {
    let coord = Coordinator::start_with(None, page);
    // Each worker finishes a job every STEPS_PER_JOB / BATCH seconds.
    let jobs = (workers as u64 * secs * BATCH / STEPS_PER_JOB) * 12 / 10 + 2 * workers as u64;
    prepare(&coord.addr, jobs, STEPS_PER_JOB).await;
    let stored = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Latencies::default()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let (cpu0, gen0) = (coord.cpu_s(), cpu_s("self"));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = WorkerServiceClient::new(channel(&coord.addr));
        let (stored, lat) = (stored.clone(), lat.clone());
        // Workers start spread over one second, as a cluster's do.
        let offset = Duration::from_micros((w as u64 * 1_000_000) / workers as u64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let id = register(&mut client, w).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut mine = Latencies::default();
            'jobs: while Instant::now() < deadline {
                let t = Instant::now();
                let a = acquire(&mut client, &id).await;
                mine.acquire.push(ms(t));
                let Some(a) = a else { continue };
                let mut step = 1;
                while step <= STEPS_PER_JOB {
                    tick.tick().await;
                    if Instant::now() >= deadline {
                        break 'jobs;
                    }
                    let t = Instant::now();
                    let r = client.report_events(points(&id, &a, step, BATCH)).await.expect("report").into_inner();
                    mine.report.push(ms(t));
                    stored.fetch_add(u64::from(r.stored), Ordering::Relaxed);
                    step += BATCH;
                    let t = Instant::now();
                    let running = vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt }];
                    client.heartbeat(pb::HeartbeatRequest { worker_id: id.clone(), running }).await.expect("heartbeat");
                    mine.heartbeat.push(ms(t));
                }
                client.report_events(finished(&id, &a, STEPS_PER_JOB)).await.expect("finish");
            }
            let mut all = lat.lock().await;
            all.acquire.extend(mine.acquire);
            all.heartbeat.extend(mine.heartbeat);
            all.report.extend(mine.report);
        }));
    }
    // The tab opens once the workers are running, and stays open to the end.
    let tab = coord.page.clone().map(|addr| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            page::open(addr, "load-0".into(), deadline).await
        })
    });
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()))).await;
        rss.push((start.elapsed().as_secs_f64(), coord.rss_mib().0));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu, generator) = (coord.cpu_s() - cpu0, cpu_s("self") - gen0);
    for t in tasks {
        t.await.expect("worker task");
    }
    let page = match tab {
        Some(t) => Some(t.await.expect("page task")),
        None => None,
    };
    let lat = std::mem::take(&mut *lat.lock().await);
    Paced {
        page,
        points_per_s: stored.load(Ordering::Relaxed) as f64 / elapsed,
        lat,
        cpu_share: cpu / elapsed,
        generator_cpu: generator / elapsed,
        rss,
        peak_mib: coord.rss_mib().1,
    }
}

/// What a saturated run measured.
struct Saturated {
    points_per_s: f64,
    reports_per_s: f64,
    /// The coordinator's and the load generator's CPU, cores.
    cpu: f64,
    generator_cpu: f64,
    /// Points read back through GetCurve for the first few jobs, against what their reports said
    /// was stored.
    read_back: (u64, u64),
}

/// Jobs of the saturated runs are long enough that no report runs past their last step.
const SATURATED_STEPS: u64 = 1 << 30;

/// Every worker holds a lease and sends reports of `per` points back to back: the most the
/// coordinator ingests. With `per` = [`ladder_proto::MAX_REPORT_EVENTS`] this is how real
/// workers drive a coordinator that is behind (each attempt's outbox sends everything queued, up
/// to that many events, one report at a time); with `per` = [`BATCH`] it is the RPC rate.
async fn saturated(workers: usize, secs: u64, per: u64) -> Saturated {
    let coord = Coordinator::start();
    prepare(&coord.addr, workers as u64, SATURATED_STEPS).await;
    let stored = Arc::new(AtomicU64::new(0));
    let reports = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    // Every worker holds a lease before the clock starts.
    let ready = Arc::new(tokio::sync::Barrier::new(workers + 1));
    for w in 0..workers {
        let mut client = WorkerServiceClient::new(channel(&coord.addr));
        let (stored, reports, ready) = (stored.clone(), reports.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let id = register(&mut client, w).await;
            let a = loop {
                if let Some(a) = acquire(&mut client, &id).await {
                    break a;
                }
            };
            ready.wait().await;
            let start = Instant::now();
            let (mut step, mut mine) = (1, 0u64);
            while start.elapsed() < Duration::from_secs(secs) {
                let r = client.report_events(points(&id, &a, step, per)).await.expect("report").into_inner();
                assert_eq!(r.refused, 0, "points refused");
                mine += u64::from(r.stored);
                reports.fetch_add(1, Ordering::Relaxed);
                step += per;
            }
            stored.fetch_add(mine, Ordering::Relaxed);
            (a.job_id, mine)
        }));
    }
    // A worker task that panicked never arrives: fail rather than wait forever.
    tokio::time::timeout(Duration::from_secs(120), ready.wait())
        .await
        .expect("every worker holds a lease within 120 s");
    let start = Instant::now();
    let (cpu0, gen0) = (coord.cpu_s(), cpu_s("self"));
    let mut per_job = Vec::new();
    for t in tasks {
        per_job.push(t.await.expect("worker task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu, generator_cpu) = ((coord.cpu_s() - cpu0) / elapsed, (cpu_s("self") - gen0) / elapsed);
    // What the coordinator said it stored is there: the first jobs' curves, read back whole.
    let mut users = LadderClient::new(channel(&coord.addr)).max_decoding_message_size(64 << 20);
    let mut read_back = (0, 0);
    for &(job_id, said) in per_job.iter().take(8) {
        let mut after_step = 0;
        loop {
            let q = pb::GetCurveRequest { job_id, after_step, limit: 0 };
            let page = users.get_curve(q).await.expect("curve").into_inner();
            read_back.0 += page.points.len() as u64;
            if page.next_after_step == 0 {
                break;
            }
            after_step = page.next_after_step;
        }
        read_back.1 += said;
    }
    Saturated {
        points_per_s: stored.load(Ordering::Relaxed) as f64 / elapsed,
        reports_per_s: reports.load(Ordering::Relaxed) as f64 / elapsed,
        cpu,
        generator_cpu,
        read_back,
    }
}

/// What the writer scenario measured.
struct Writer {
    /// Heartbeat latencies (ms) before the burst, and while it ran.
    quiet: Vec<f64>,
    burst: Vec<f64>,
    burst_s: f64,
    submit_s: f64,
    /// Stale reports sent, and how many were answered with a refusal.
    stale: (u64, u64),
    /// fsync/fdatasync calls of the coordinator during the burst; None without strace.
    fsyncs: Option<u64>,
}

/// Wall-clock seconds since the epoch (strace -ttt's clock).
fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// fsyncs logged by strace -ttt between `from` and `to` (epoch seconds).
fn fsyncs_between(log: &std::path::Path, from: f64, to: f64) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let n = text
        .lines()
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .filter_map(|l| l.split_whitespace().nth(1).and_then(|t| t.parse::<f64>().ok()))
        .filter(|t| (from..=to).contains(t))
        .count();
    Some(n as u64)
}

/// Issue 19's writer scenario: `workers` workers each hold a lease and heartbeat at 1 Hz; their
/// sweep is cancelled, then a spec of `jobs` jobs is submitted while the workers send `stale`
/// reports for their now stale attempts, back to back. Heartbeat latency before and during that
/// burst, and the coordinator's fsyncs during it.
async fn writer(workers: usize, jobs: u64, stale: u64) -> Writer {
    let strace = Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("fsyncs.log");
    if !strace {
        println!("  (strace is not installed: no fsync count)");
    }
    let coord = Coordinator::start_with(strace.then_some(log.as_path()), false);
    prepare(&coord.addr, workers as u64, SATURATED_STEPS).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beats = Arc::new(Mutex::new(Vec::<(f64, f64)>::new()));
    let ready = Arc::new(tokio::sync::Barrier::new(workers + 1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = WorkerServiceClient::new(channel(&coord.addr));
        let (stop, beats, ready) = (stop.clone(), beats.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let id = register(&mut client, w).await;
            let a = loop {
                if let Some(a) = acquire(&mut client, &id).await {
                    break a;
                }
            };
            ready.wait().await;
            let mut hb = client.clone();
            let (hid, ha) = (id.clone(), a.clone());
            let heart = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let running = vec![pb::AttemptRef { job_id: ha.job_id, attempt: ha.attempt }];
                    let (at, t) = (now_s(), Instant::now());
                    hb.heartbeat(pb::HeartbeatRequest { worker_id: hid.clone(), running }).await.expect("heartbeat");
                    mine.push((at, ms(t)));
                }
                beats.lock().await.extend(mine);
            });
            (client, id, a, heart)
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), ready.wait()).await.expect("every worker holds a lease");
    let mut held = Vec::new();
    for t in tasks {
        held.push(t.await.expect("worker"));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut users = LadderClient::new(channel(&coord.addr));
    users.cancel_sweep(pb::CancelSweepRequest { sweep: "load-0".into() }).await.expect("cancel");
    // The burst: one big submission, and every worker's stale reports back to back.
    let began = (now_s(), Instant::now());
    let seeds: Vec<String> = (0..jobs.div_ceil(2)).map(|s| s.to_string()).collect();
    let spec = format!(
        "name = \"big\"\ndataset = \"bench\"\nseeds = [{}]\n[model]\nn_ctx = 64\nd_head = 16\nshapes = [[1, 32], [2, 32]]\n[train]\nbatch_tokens = 1024\nsteps = 100\nlr = 0.001\n[resources]\ndevice = \"cpu\"\n",
        seeds.join(", ")
    );
    let submit = tokio::spawn(async move {
        let t = Instant::now();
        users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
        t.elapsed().as_secs_f64()
    });
    let per = stale.div_ceil(workers as u64);
    let mut senders = Vec::new();
    for (mut client, id, a, _) in held.iter().map(|h| (h.0.clone(), h.1.clone(), h.2.clone(), ())) {
        senders.push(tokio::spawn(async move {
            let mut refused = 0;
            for k in 0..per {
                if client.report_events(points(&id, &a, 1 + k, 1)).await.is_err() {
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for s in senders {
        refused += s.await.expect("sender");
    }
    let submit_s = submit.await.expect("submit");
    let ended = (now_s(), began.1.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for h in held {
        h.3.await.expect("heartbeats");
    }
    let beats = beats.lock().await;
    let quiet = beats.iter().filter(|(at, _)| *at < began.0).map(|b| b.1).collect();
    let burst = beats.iter().filter(|(at, _)| (began.0..=ended.0).contains(at)).map(|b| b.1).collect();
    drop(coord);
    Writer {
        quiet,
        burst,
        burst_s: ended.1,
        submit_s,
        stale: (per * workers as u64, refused),
        fsyncs: strace.then(|| fsyncs_between(&log, began.0, ended.0)).flatten(),
    }
}

fn print_writer(workers: usize, jobs: u64, stale: u64, mut w: Writer) {
    println!();
    println!(
        "writer, {workers} workers heartbeating at 1 Hz: a {jobs}-job spec submitted and {stale} stale reports at once:"
    );
    println!(
        "  burst {:.2} s (submission answered in {:.2} s); {} stale reports sent, {} refused",
        w.burst_s, w.submit_s, w.stale.0, w.stale.1
    );
    let (q50, q99) = (pct(&mut w.quiet, 0.5), pct(&mut w.quiet, 0.99));
    let (b50, b99) = (pct(&mut w.burst, 0.5), pct(&mut w.burst, 0.99));
    let bmax = w.burst.iter().copied().fold(0.0, f64::max);
    println!("  Heartbeat before  p50 {q50:>8.2} ms  p99 {q99:>8.2} ms  ({} calls)", w.quiet.len());
    println!("  Heartbeat burst   p50 {b50:>8.2} ms  p99 {b99:>8.2} ms  max {bmax:.2} ms  ({} calls)", w.burst.len());
    match w.fsyncs {
        Some(n) => println!(
            "  coordinator fsyncs during the burst: {n} ({:.0}/s; {:.3} per stale report)",
            n as f64 / w.burst_s,
            n as f64 / w.stale.0.max(1) as f64
        ),
        None => println!("  coordinator fsyncs: not counted"),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this without it: then a
    // two-second smoke pass at 20 workers checks that the harness still works.
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let (secs, workers, raw_n) = if full {
        (env("LADDER_BENCH_SECS", 30), env("LADDER_BENCH_WORKERS", 1000) as usize, 300_000)
    } else {
        (2, 20, 10_000)
    };
    let tmp = tempfile::tempdir().expect("tmp");
    // Raw redb on the same disk, measured again just before each saturated run (a shared disk's
    // rate drifts over minutes).
    let mut k = 0;
    let mut raw = |what: &str| {
        k += 1;
        let r1000 = raw_redb(&tmp.path().join(format!("a{k}")), raw_n, 1000);
        let r10 = raw_redb(&tmp.path().join(format!("b{k}")), raw_n / 20, 10);
        println!("raw redb {what}: durable commits of 1000 points {r1000:.0} points/s, of 10 points {r10:.0} points/s");
        (r1000, r10)
    };
    // LADDER_BENCH_ONLY=writer: the writer scenario alone.
    let only = std::env::var("LADDER_BENCH_ONLY").unwrap_or_default();
    let (w_workers, w_jobs, w_stale) = if full { (200, 10_000, 5_000) } else { (10, 200, 100) };
    let writer_run = rt.block_on(writer(w_workers, w_jobs, w_stale));
    assert!(writer_run.burst.len() + writer_run.quiet.len() > 0, "no heartbeat was timed");
    print_writer(w_workers, w_jobs, w_stale, writer_run);
    if only == "writer" {
        return;
    }
    println!();
    let (raw_1000, _) = raw("before the paced run");

    // The paced run goes first, on a quiet disk: the saturated runs leave writeback behind.
    let mut p = rt.block_on(paced(workers, secs, false));
    assert!(p.points_per_s > 0.0, "no point was ingested");
    print_paced(workers, secs, raw_1000, &mut p);
    // The same run with a browser tab on the first sweep's page (issue 21).
    let mut with_page = rt.block_on(paced(workers, secs, true));
    print_paced(workers, secs, raw_1000, &mut with_page);
    let tab = with_page.page.as_ref().expect("the page run had a page");
    assert!(tab.load_bytes > 0, "the page's first load read nothing");
    // The smoke pass's tab is open for a second: too short to count on an event.
    assert!(!full || tab.events > 0, "the open page received no event");
    println!(
        "  the page: first load {} kB, then {} events ({} kB) over the run",
        tab.load_bytes / 1024,
        tab.events,
        tab.event_bytes / 1024
    );
    let p99 = |v: &mut Vec<f64>| pct(v, 0.99);
    println!(
        "  with the page / without: Heartbeat p99 {:.2}, Acquire p99 {:.2}, durable points/s {:.3}, coordinator CPU {:.2}",
        p99(&mut with_page.lat.heartbeat) / p99(&mut p.lat.heartbeat),
        p99(&mut with_page.lat.acquire) / p99(&mut p.lat.acquire),
        with_page.points_per_s / p.points_per_s,
        with_page.cpu_share / p.cpu_share
    );
    saturated_runs(&rt, workers, secs, &mut raw);
}

/// Prints one paced run.
fn print_paced(workers: usize, secs: u64, raw_1000: f64, p: &mut Paced) {
    let offered = workers as f64 * BATCH as f64;
    println!();
    let tab = if p.page.is_some() { ", a browser tab on the page" } else { "" };
    println!("paced{tab}, {workers} workers, 1 Hz heartbeats, {BATCH} points/s each, {secs} s:");
    println!(
        "  durable points/s {:.0} of {offered:.0} offered ({:.3}); {:.3} of raw redb",
        p.points_per_s,
        p.points_per_s / offered,
        p.points_per_s / raw_1000
    );
    for (name, v) in
        [("Acquire", &mut p.lat.acquire), ("Heartbeat", &mut p.lat.heartbeat), ("ReportEvents", &mut p.lat.report)]
    {
        println!("  {name:<13} p50 {:>8.2} ms  p99 {:>8.2} ms  ({} calls)", pct(v, 0.5), pct(v, 0.99), v.len());
    }
    println!(
        "  coordinator CPU {:.2} cores, load generator {:.2} cores (of {}), coordinator peak RSS {:.0} MiB",
        p.cpu_share,
        p.generator_cpu,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        p.peak_mib
    );
    // Memory over the run: after the first tenth (warm-up), then at each fifth.
    let n = p.rss.len();
    if n >= 10 {
        let at: Vec<String> = [n / 10, n * 3 / 10, n / 2, n * 7 / 10, n * 9 / 10, n - 1]
            .iter()
            .map(|&i| format!("{:.0}s {:.0}", p.rss[i].0, p.rss[i].1))
            .collect();
        println!("  coordinator RSS (MiB) over the run: {}", at.join(", "));
    }
}

/// The saturated runs, unless LADDER_BENCH_PACED_ONLY=1.
fn saturated_runs(rt: &tokio::runtime::Runtime, workers: usize, secs: u64, raw: &mut impl FnMut(&str) -> (f64, f64)) {
    if std::env::var_os("LADDER_BENCH_PACED_ONLY").is_none() {
        let full_reports = ladder_proto::MAX_REPORT_EVENTS as u64;
        for (per, what) in
            [(full_reports, "a worker's outbox once the coordinator is behind"), (BATCH, "a paced worker's")]
        {
            println!();
            let (raw_1000, raw_10) = raw("before this run");
            let r = rt.block_on(saturated(workers, secs.min(20), per));
            assert!(r.points_per_s > 0.0, "no point was ingested");
            assert_eq!(r.read_back.0, r.read_back.1, "points read back != points the coordinator said it stored");
            println!("saturated, {workers} workers sending {per}-point reports ({what}) back to back:");
            println!(
                "  durable points/s {:.0} = {:.3} of raw redb (1000-point commits), {:.2}x raw redb (10-point commits)",
                r.points_per_s,
                r.points_per_s / raw_1000,
                r.points_per_s / raw_10
            );
            println!(
                "  {:.0} reports/s; coordinator CPU {:.2} cores, load generator {:.2} cores; {} points read back of {} stored",
                r.reports_per_s, r.cpu, r.generator_cpu, r.read_back.0, r.read_back.1
            );
            println!("  registrations retried after a transport error so far: {}", RETRIED.load(Ordering::Relaxed));
        }
    }
}
