//! Fuzzing every RPC handler (proptest) against one real server: arbitrary requests, from a
//! registered worker holding a real lease and from strangers, are each answered (with a value or a
//! status, never a dropped connection) within a second, and afterwards every stored record still
//! reads: sweeps, jobs, curves, checkpoints, workers, datasets. `PROPTEST_CASES` sets the count.

use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::pb;
use ladder_testkit::server::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), -10.0..10.0f64]
}

fn point() -> impl Strategy<Value = pb::MetricPoint> {
    (
        any::<u64>(),
        0u64..50,
        any::<u64>(),
        any_f64(),
        any_f64(),
        prop::option::of(any_f64()),
        any_f64(),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(any_f64()),
    )
        .prop_map(|(step, small_step, tokens, loss, lr, val, gn, bs, bb, bsimple)| pb::MetricPoint {
            step: if step % 3 == 0 { small_step } else { step },
            tokens,
            flops: loss.abs(),
            flops_exact: lr,
            train_loss: loss,
            val_loss: val,
            lr,
            grad_norm: gn,
            gns_small_sq: gn,
            gns_big_sq: lr,
            b_small: bs % 1000,
            b_big: bb % 2000,
            b_simple: bsimple,
            tokens_per_s: gn,
            attempt: 7,
        })
}

fn event() -> impl Strategy<Value = pb::AttemptEvent> {
    use pb::attempt_event::Kind;
    prop_oneof![
        point().prop_map(|m| Some(Kind::Metrics(m))),
        (any::<u64>(), "\\PC{0,20}")
            .prop_map(|(step, reason)| Some(Kind::Finished(pb::AttemptFinished { step, reason }))),
        (any::<i32>(), "\\PC{0,200}").prop_map(|(kind, message)| Some(Kind::Failed(pb::AttemptFailed {
            kind,
            message,
            ..Default::default()
        }))),
        any::<u64>().prop_map(|step| Some(Kind::Released(pb::AttemptReleased { step }))),
        any::<u64>().prop_map(|s| Some(Kind::Started(pb::AttemptStarted { resumed_from_step: s % 100 }))),
        Just(None),
    ]
    .prop_map(|kind| pb::AttemptEvent { kind })
}

/// One arbitrary call.
#[derive(Debug, Clone)]
enum Call {
    Submit(String),
    Heartbeat(Vec<(u64, u32)>, bool),
    Acquire(String, u32, u64, u64),
    Report(u64, u32, Vec<pb::AttemptEvent>, bool),
    Upload(u64, u32, u64, Vec<u8>, u64, bool),
    Download(u64, u64),
    Curve(u64, u64, u32),
    Fetch(String, String),
    Dataset(String, u64, u64, u32, Vec<u8>),
    Register(String, Vec<String>),
    Get(String),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        "\\PC{0,300}".prop_map(Call::Submit),
        (prop::collection::vec((0u64..6, 0u32..4), 0..4), any::<bool>()).prop_map(|(r, own)| Call::Heartbeat(r, own)),
        ("(cpu|cuda|cuda:[0-9]| cpu |\\PC{0,8})", any::<u32>(), any::<u64>(), any::<u64>())
            .prop_map(|(s, m, b, t)| Call::Acquire(s, m, b, t)),
        (0u64..6, 0u32..4, prop::collection::vec(event(), 0..12), any::<bool>())
            .prop_map(|(j, a, e, own)| Call::Report(j, a, e, own)),
        (0u64..6, 0u32..4, 0u64..60, prop::collection::vec(any::<u8>(), 0..3000), any::<u64>(), any::<bool>())
            .prop_map(|(j, a, s, b, t, honest)| Call::Upload(j, a, s, b, t, honest)),
        (0u64..6, 0u64..60).prop_map(|(j, s)| Call::Download(j, s)),
        (0u64..6, any::<u64>(), any::<u32>()).prop_map(|(j, a, l)| Call::Curve(j, a, l)),
        ("[0-9a-f]{0,64}", "(train|val|meta|\\PC{0,5})").prop_map(|(s, f)| Call::Fetch(s, f)),
        ("\\PC{0,20}", any::<u64>(), any::<u64>(), any::<u32>(), prop::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(n, t, v, voc, b)| Call::Dataset(n, t, v, voc, b)),
        ("\\PC{0,20}", prop::collection::vec("\\PC{0,8}", 0..3)).prop_map(|(n, s)| Call::Register(n, s)),
        "\\PC{0,12}".prop_map(Call::Get),
    ]
}

async fn run(s: &mut Server, worker: &str, c: Call) {
    use sha2::Digest;
    let w = |own: bool| if own { worker.to_string() } else { "stranger-9".to_string() };
    match c {
        Call::Submit(spec) => {
            drop(s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await)
        }
        Call::Heartbeat(r, own) => {
            let running = r.into_iter().map(|(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect();
            drop(s.workers.heartbeat(pb::HeartbeatRequest { worker_id: w(own), running }).await)
        }
        Call::Acquire(slot, max_jobs, memory_bytes, memory_total_bytes) => {
            let req = pb::AcquireRequest {
                worker_id: worker.into(),
                slot,
                wait_ms: 1,
                max_jobs,
                memory_bytes,
                memory_total_bytes,
            };
            drop(s.workers.acquire(req).await)
        }
        Call::Report(job_id, attempt, events, own) => {
            let req = pb::ReportEventsRequest { worker_id: w(own), job_id, attempt, events };
            drop(s.workers.report_events(req).await)
        }
        Call::Upload(job_id, attempt, step, blob, total, honest) => {
            let sha = hex::encode(sha2::Sha256::digest(&blob));
            let total_bytes = if honest { blob.len() as u64 } else { total };
            let h = pb::CheckpointHeader { worker_id: worker.into(), job_id, attempt, step, total_bytes, sha256: sha };
            let mut msgs = vec![pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h.clone())) }];
            for c in blob.chunks(700) {
                msgs.push(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(c.to_vec())) });
            }
            if !honest {
                msgs.push(pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(h)) });
            }
            drop(s.workers.upload_checkpoint(tokio_stream::iter(msgs)).await)
        }
        Call::Download(job_id, step) => {
            if let Ok(r) = s.workers.download_checkpoint(pb::FetchCheckpointRequest { job_id, step }).await {
                let mut st = r.into_inner();
                while let Some(c) = tokio_stream::StreamExt::next(&mut st).await {
                    if c.is_err() {
                        break;
                    }
                }
            }
        }
        Call::Curve(job_id, after_step, limit) => {
            drop(s.users.get_curve(pb::GetCurveRequest { job_id, after_step, limit }).await)
        }
        Call::Fetch(sha256, file) => {
            if let Ok(r) = s.workers.fetch_dataset(pb::FetchDatasetRequest { sha256, file }).await {
                let mut st = r.into_inner();
                while let Some(c) = tokio_stream::StreamExt::next(&mut st).await {
                    if c.is_err() {
                        break;
                    }
                }
            }
        }
        Call::Dataset(name, train_bytes, val_bytes, vocab, data) => {
            // The header announces sizes the bytes may not match: the fuzzer's point.
            let mut msgs = ladder_testkit::data::upload(&name, data.clone(), data, vocab);
            msgs[0] = pb::DatasetUpload {
                part: Some(pb::dataset_upload::Part::Header(pb::DatasetHeader {
                    name,
                    meta_json: String::new(),
                    train_bytes,
                    val_bytes,
                    vocab,
                })),
            };
            drop(s.users.register_dataset(tokio_stream::iter(msgs)).await)
        }
        Call::Register(name, slots) => {
            drop(s.workers.register(pb::RegisterRequest { name, slots, ..Default::default() }).await)
        }
        Call::Get(key) => {
            drop(s.users.get_sweep(pb::GetSweepRequest { sweep: key.clone() }).await);
            drop(s.users.list_jobs(pb::ListJobsRequest { sweep: key }).await);
        }
    }
}

/// Everything the server stores still reads.
async fn all_readable(s: &mut Server) {
    let sweeps = s.users.list_sweeps(pb::ListSweepsRequest::default()).await.expect("sweeps read").into_inner().sweeps;
    for sw in sweeps {
        let jobs = s
            .users
            .list_jobs(pb::ListJobsRequest { sweep: sw.name.clone() })
            .await
            .expect("jobs read")
            .into_inner()
            .jobs;
        assert_eq!(jobs.len() as u32, sw.jobs_total, "every job of {} reads", sw.name);
        for j in jobs {
            s.users
                .get_curve(pb::GetCurveRequest { job_id: j.id, after_step: 0, limit: 0 })
                .await
                .expect("curve reads");
            s.users.list_checkpoints(pb::ListCheckpointsRequest { job_id: j.id }).await.expect("checkpoints read");
        }
    }
    s.users.list_workers(pb::ListWorkersRequest {}).await.expect("workers read");
    s.users.list_datasets(pb::ListDatasetsRequest {}).await.expect("datasets read");
}

#[test]
fn every_handler_answers_arbitrary_input_in_time_and_records_stay_readable() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (s, worker) = rt.block_on(async {
        let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
        register_dataset(&mut s.users).await;
        s.users
            .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
            .await
            .expect("submit");
        let worker = register_worker(&mut s.workers, "fuzz").await;
        let a = acquire(&mut s.workers, &worker).await.expect("a lease");
        s.workers.report_events(report(&worker, &a, vec![point_event(1), point_event(2)])).await.expect("report");
        (s, worker)
    });
    let s = std::cell::RefCell::new(s);
    let config = ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    runner
        .run(&prop::collection::vec(call(), 1..8), |calls| {
            let mut s = s.borrow_mut();
            rt.block_on(async {
                for c in calls {
                    let t = std::time::Instant::now();
                    let what = format!("{c:?}").chars().take(200).collect::<String>();
                    tokio::time::timeout(Duration::from_secs(1), run(&mut s, &worker, c))
                        .await
                        .unwrap_or_else(|_| panic!("not answered within 1 s: {what}"));
                    assert!(t.elapsed() < Duration::from_secs(1), "{what}");
                }
                all_readable(&mut s).await;
            });
            Ok(())
        })
        .expect("no input breaks the server");
    let mut s = s.into_inner();
    rt.block_on(async {
        all_readable(&mut s).await;
        s.shutdown().await;
    });
}

fn point_event(step: u64) -> pb::AttemptEvent {
    ladder_testkit::server::point(step, 2.0)
}
