//! Load benchmark: simulated workers on loopback against an in-process coordinator with an
//! on-disk store. Reports durable metric points/s ingested and p50/p99 latency of Acquire and
//! Heartbeat at 100 and 1000 workers, beside raw redb batched-insert throughput measured in the
//! same run on the same disk. Run: `cargo bench -p ladder-coordinator --bench load`.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ladder_coordinator::{Config, Store, serve};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use prost::Message;
use redb::{Database, TableDefinition};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const POINTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("points");
const STEPS_PER_JOB: u64 = 100;
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
    total as f64 / start.elapsed().as_secs_f64()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[((v.len() - 1) as f64 * p).round() as usize] }
}

struct Outcome {
    points_per_s: f64,
    acquire_ms: Vec<f64>,
    heartbeat_ms: Vec<f64>,
}

async fn run_load(workers: usize, secs: u64) -> Outcome {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("ladder.redb")).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let cfg = Config { lease_ttl: Duration::from_secs(60), ..Config::default() };
    let server = tokio::spawn(serve(store, cfg, listener, stop.clone()));
    // Workers share a pool of connections (HTTP/2 multiplexes each).
    let channels: Vec<Channel> =
        (0..32).map(|_| Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy()).collect();
    let mut users = LadderClient::new(channels[0].clone());
    let tokens: Vec<u8> = (0..10_000u16).flat_map(|i| (i % 100).to_le_bytes()).collect();
    let header = pb::DatasetHeader {
        name: "bench".into(),
        meta_json: String::new(),
        train_bytes: 20_000,
        val_bytes: 20_000,
        vocab: 128,
    };
    let msgs = vec![
        pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(header)) },
        pb::DatasetUpload {
            part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes {
                file: "train".into(),
                data: tokens.clone(),
            })),
        },
        pb::DatasetUpload {
            part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: "val".into(), data: tokens })),
        },
    ];
    users.register_dataset(tokio_stream::iter(msgs)).await.expect("dataset");
    // Enough jobs that no worker waits for one: each lasts STEPS_PER_JOB steps.
    // A worker reports BATCH points every 100 ms, so it needs 10·BATCH/STEPS_PER_JOB jobs a second.
    let jobs_needed = workers as u64 * secs * 10 * BATCH / STEPS_PER_JOB * 12 / 10 + workers as u64;
    let mut submitted = 0;
    let mut k = 0;
    while submitted < jobs_needed {
        let seeds = (jobs_needed - submitted).min(5000);
        let seeds_list: Vec<String> = (0..seeds).map(|s| s.to_string()).collect();
        let spec = format!(
            "name = \"load-{k}\"\ndataset = \"bench\"\nseeds = [{}]\n[model]\nn_ctx = 64\nd_head = 16\nshapes = [[1, 32]]\n[train]\nbatch_tokens = 1024\nsteps = {STEPS_PER_JOB}\nlr = 0.001\n[resources]\ndevice = \"cpu\"\n",
            seeds_list.join(", ")
        );
        users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec }).await.expect("submit");
        submitted += seeds;
        k += 1;
    }

    let stored = Arc::new(AtomicU64::new(0));
    let acquire_ms = Arc::new(Mutex::new(Vec::new()));
    let heartbeat_ms = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = WorkerServiceClient::new(channels[w % channels.len()].clone());
        let (stored, acq, hb) = (stored.clone(), acquire_ms.clone(), heartbeat_ms.clone());
        tasks.push(tokio::spawn(async move {
            let id = client
                .register(pb::RegisterRequest { name: format!("sim{w}"), slots: vec!["cpu".into()] })
                .await
                .expect("register")
                .into_inner()
                .worker_id;
            let mut last_beat = Instant::now();
            while Instant::now() < deadline {
                let t = Instant::now();
                let a = client
                    .acquire(pb::AcquireRequest {
                        worker_id: id.clone(),
                        slot: "cpu".into(),
                        wait_ms: 1000,
                        ..Default::default()
                    })
                    .await
                    .expect("acquire")
                    .into_inner()
                    .assignment;
                acq.lock().await.push(t.elapsed().as_secs_f64() * 1e3);
                let Some(a) = a else { continue };
                let mut step = 0;
                while step < STEPS_PER_JOB && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await; // a trainer's pace
                    let events = (step + 1..=step + BATCH)
                        .map(|s| pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Metrics(sample_point(s))) })
                        .collect();
                    let req =
                        pb::ReportEventsRequest { worker_id: id.clone(), job_id: a.job_id, attempt: a.attempt, events };
                    let r = client.report_events(req).await.expect("report").into_inner();
                    stored.fetch_add(u64::from(r.stored), Ordering::Relaxed);
                    step += BATCH;
                    if last_beat.elapsed() >= Duration::from_millis(500) {
                        let t = Instant::now();
                        let running = vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt }];
                        client
                            .heartbeat(pb::HeartbeatRequest { worker_id: id.clone(), running })
                            .await
                            .expect("heartbeat");
                        hb.lock().await.push(t.elapsed().as_secs_f64() * 1e3);
                        last_beat = Instant::now();
                    }
                }
                if step >= STEPS_PER_JOB {
                    let fin = pb::AttemptEvent {
                        kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished {
                            step,
                            reason: "steps".into(),
                        })),
                    };
                    let req = pb::ReportEventsRequest {
                        worker_id: id.clone(),
                        job_id: a.job_id,
                        attempt: a.attempt,
                        events: vec![fin],
                    };
                    client.report_events(req).await.expect("finish");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.cancel();
    let _ = server.await;
    let acquire_ms = std::mem::take(&mut *acquire_ms.lock().await);
    let heartbeat_ms = std::mem::take(&mut *heartbeat_ms.lock().await);
    Outcome { points_per_s: stored.load(Ordering::Relaxed) as f64 / elapsed, acquire_ms, heartbeat_ms }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it: then
    // only a one-second smoke pass at 10 workers checks that the harness still works.
    let full = std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("LADDER_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let (secs, levels, raw_n): (u64, &[usize], u64) =
        if full { (secs, &[100, 1000], 200_000) } else { (1, &[10], 10_000) };
    let tmp = tempfile::tempdir().expect("tmp");
    let raw_1000 = raw_redb(tmp.path(), raw_n, 1000);
    let raw_10 = raw_redb(&tmp.path().join("b").tap_mkdir(), raw_n / 10, 10);
    println!("raw redb, durable commits of 1000 points: {raw_1000:>10.0} points/s");
    println!("raw redb, durable commits of   10 points: {raw_10:>10.0} points/s");
    println!();
    println!(
        "{:>8} {:>14} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "workers", "points/s", "vs raw1000", "acq p50", "acq p99", "hb p50", "hb p99 (ms)", "offered"
    );
    for &workers in levels {
        let mut o = rt.block_on(run_load(workers, secs));
        assert!(o.points_per_s > 0.0, "no point was ingested");
        let offered = workers as f64 * BATCH as f64 * 10.0;
        println!(
            "{workers:>8} {:>14.0} {:>10.3} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>10.0}",
            o.points_per_s,
            o.points_per_s / raw_1000,
            pct(&mut o.acquire_ms, 0.5),
            pct(&mut o.acquire_ms, 0.99),
            pct(&mut o.heartbeat_ms, 0.5),
            pct(&mut o.heartbeat_ms, 0.99),
            offered,
        );
    }
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).expect("mkdir");
        self
    }
}
