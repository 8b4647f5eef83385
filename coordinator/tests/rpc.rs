//! The coordinator over real gRPC on 127.0.0.1:0: submission, leases, fencing, replays.

use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::pb;
use ladder_testkit::server::*;
use tonic::Code;

#[tokio::test]
async fn stale_attempts_are_fenced_and_replays_change_nothing() {
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let ttl = Duration::from_secs(30);
    let mut s = start_clocked(Store::in_memory().expect("store"), ttl, &clock).await;
    register_dataset(&mut s.users).await;
    let sub = s
        .users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
        .await
        .expect("submit")
        .into_inner();
    assert!(sub.created);
    assert_eq!(sub.sweep.as_ref().map(|x| x.jobs_total), Some(2));
    // Same spec again: the same sweep, not a second one.
    let again = s
        .users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
        .await
        .expect("again")
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.sweep.map(|x| x.id), sub.sweep.map(|x| x.id));
    // Same name, other spec: refused.
    let other = SPEC.replace("steps = 5", "steps = 6");
    let e = s
        .users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: other, ..Default::default() })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::AlreadyExists);

    let w1 = register_worker(&mut s.workers, "w").await;
    let w2 = register_worker(&mut s.workers, "w").await;
    assert_ne!(w1, w2);
    let a1 = acquire(&mut s.workers, &w1).await.expect("a job");
    assert_eq!(a1.attempt, 1);
    let r = s.workers.report_events(report(&w1, &a1, vec![point(1, 3.0), point(2, 2.5)])).await.expect("report");
    assert_eq!(r.into_inner().stored, 2);
    // A replay of the same points stores nothing and changes nothing.
    let r = s.workers.report_events(report(&w1, &a1, vec![point(2, 9.9)])).await.expect("replay");
    assert_eq!(r.into_inner().stored, 0);

    // w1 stops heartbeating: its lease expires and the job is requeued as attempt 2.
    clock.advance(ttl + Duration::from_millis(1));
    let mut a2 = None;
    for _ in 0..25 {
        if let Some(a) = acquire(&mut s.workers, &w2).await
            && a.job_id == a1.job_id
        {
            a2 = Some(a);
            break;
        }
    }
    let a2 = a2.expect("the expired job comes back");
    assert_eq!(a2.attempt, 2);

    // The stale attempt is refused for events, heartbeats and checkpoints.
    let e = s.workers.report_events(report(&w1, &a1, vec![point(3, 1.0)])).await.expect_err("fenced");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let hb =
        pb::HeartbeatRequest { worker_id: w1.clone(), running: vec![pb::AttemptRef { job_id: a1.job_id, attempt: 1 }] };
    let stop = s.workers.heartbeat(hb).await.expect("heartbeat").into_inner().stop;
    assert_eq!(stop, vec![pb::AttemptRef { job_id: a1.job_id, attempt: 1 }]);
    let header = pb::CheckpointHeader {
        worker_id: w1.clone(),
        job_id: a1.job_id,
        attempt: 1,
        step: 2,
        total_bytes: 3,
        sha256: String::new(),
    };
    let up = vec![
        pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(header)) },
        pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(vec![1, 2, 3])) },
    ];
    let e = s.workers.upload_checkpoint(tokio_stream::iter(up)).await.expect_err("fenced");
    assert_eq!(e.code(), Code::FailedPrecondition);

    // An impossible point is refused alone; the rest of its batch is stored.
    let r =
        s.workers.report_events(report(&w2, &a2, vec![point(3, 2.0), point(4, f64::INFINITY)])).await.expect("report");
    assert_eq!((r.get_ref().stored, r.get_ref().refused), (1, 1));

    // A replay by the current attempt stores nothing; the curve keeps the first value of step 2.
    let r = s.workers.report_events(report(&w2, &a2, vec![point(3, 2.0)])).await.expect("current attempt");
    assert_eq!(r.get_ref().stored, 0);
    let curve = s
        .users
        .get_curve(pb::GetCurveRequest { job_id: a1.job_id, after_step: 0, limit: 0 })
        .await
        .expect("curve")
        .into_inner();
    let steps: Vec<(u64, f64, u32)> = curve.points.iter().map(|p| (p.step, p.train_loss, p.attempt)).collect();
    assert_eq!(steps, vec![(1, 3.0, 1), (2, 2.5, 1), (3, 2.0, 2)]);

    let job = s.users.get_job(pb::GetJobRequest { job_id: a1.job_id }).await.expect("job").into_inner();
    assert_eq!((job.attempt, job.step, job.failure), (2, 3, pb::FailureKind::Lost as i32));
    s.shutdown().await;
}

#[tokio::test]
async fn failures_are_classified_and_only_crashes_retry() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
        .await
        .expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let fail = |kind: pb::FailureKind| pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Failed(pb::AttemptFailed {
            kind: kind as i32,
            message: "x".into(),
            ..Default::default()
        })),
    };
    // Job A diverges: failed for good.
    let a = acquire(&mut s.workers, &w).await.expect("job");
    s.workers.report_events(report(&w, &a, vec![fail(pb::FailureKind::Diverged)])).await.expect("report");
    // Job B crashes: retried once (max_restarts = 1), then failed.
    let b = acquire(&mut s.workers, &w).await.expect("job");
    assert_ne!(a.job_id, b.job_id);
    s.workers.report_events(report(&w, &b, vec![fail(pb::FailureKind::Crashed)])).await.expect("report");
    let b2 = acquire(&mut s.workers, &w).await.expect("retry");
    assert_eq!((b2.job_id, b2.attempt), (b.job_id, 2));
    s.workers.report_events(report(&w, &b2, vec![fail(pb::FailureKind::Crashed)])).await.expect("report");
    assert!(acquire(&mut s.workers, &w).await.is_none(), "no restarts left");
    let jobs = s.users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    let states: Vec<(i32, i32)> = jobs.iter().map(|j| (j.state, j.failure)).collect();
    let failed = pb::JobState::Failed as i32;
    assert_eq!(states, vec![(failed, pb::FailureKind::Diverged as i32), (failed, pb::FailureKind::Crashed as i32)]);
    let sweep = s.users.get_sweep(pb::GetSweepRequest { sweep: "fence".into() }).await.expect("sweep").into_inner();
    assert_eq!((sweep.state, sweep.jobs_failed), (pb::SweepState::Done as i32, 2));
    s.shutdown().await;
}

#[tokio::test]
async fn bad_specs_are_invalid_argument_with_line_and_key_and_store_nothing() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    for (spec, want) in [
        (SPEC.replace("lr = 0.01", "lr = 0.01\nlr_decay = 2"), "line 12"),
        (SPEC.replace("\"tiny\"", "\"huge\""), "line 2: dataset: unknown dataset \"huge\""),
        (SPEC.replace("[[1, 16]]", "[[1, 20]]"), "model.shapes[0]: d_model 20 is not divisible by d_head 8"),
        (SPEC.replace("[[1, 16]]", "[]"), "model.shapes: the grid is empty"),
    ] {
        let e = s
            .users
            .submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(want), "{} lacks {want}", e.message());
    }
    let sweeps = s.users.list_sweeps(pb::ListSweepsRequest::default()).await.expect("list").into_inner().sweeps;
    assert!(sweeps.is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn datasets_with_out_of_range_tokens_are_refused() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    let msgs = ladder_testkit::data::upload("bad", vec![1, 0, 12, 0], vec![1, 0], 10);
    let e = s.users.register_dataset(tokio_stream::iter(msgs)).await.expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("train: token id 12 at position 1 is out of range for vocab 10"), "{}", e.message());
    s.shutdown().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_reopening_the_store() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let (job_id, w) = {
        let mut s = start(Store::open(&path).expect("open"), Duration::from_secs(30)).await;
        register_dataset(&mut s.users).await;
        s.users
            .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
            .await
            .expect("submit");
        let w = s
            .workers
            .register(pb::RegisterRequest { name: "w".into(), slots: vec!["cpu".into()], ..Default::default() })
            .await
            .expect("reg")
            .into_inner()
            .worker_id;
        let a = acquire(&mut s.workers, &w).await.expect("job");
        s.workers.report_events(report(&w, &a, vec![point(1, 3.0)])).await.expect("ack");
        s.shutdown().await;
        (a.job_id, w)
    };
    // Reopen: the sweep, the lease and the acknowledged point are there; the lease still fences.
    // The file lock is released once the old writer thread has drained; a new process never waits.
    let mut reopened = Store::open(&path);
    for _ in 0..50 {
        if reopened.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reopened = Store::open(&path);
    }
    let mut s = start(reopened.expect("reopen"), Duration::from_secs(30)).await;
    let curve =
        s.users.get_curve(pb::GetCurveRequest { job_id, after_step: 0, limit: 0 }).await.expect("curve").into_inner();
    assert_eq!(curve.points.len(), 1);
    let job = s.users.get_job(pb::GetJobRequest { job_id }).await.expect("job").into_inner();
    assert_eq!((job.state, job.attempt, job.worker_id.as_str()), (pb::JobState::Running as i32, 1, w.as_str()));
    s.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_sweep_stops_running_attempts_and_empties_the_queue() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
        .await
        .expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("job");
    let sweep =
        s.users.cancel_sweep(pb::CancelSweepRequest { sweep: "fence".into() }).await.expect("cancel").into_inner();
    assert_eq!((sweep.state, sweep.jobs_cancelled), (pb::SweepState::Cancelled as i32, 2));
    let hb = pb::HeartbeatRequest {
        worker_id: w.clone(),
        running: vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt }],
    };
    let stop = s.workers.heartbeat(hb).await.expect("heartbeat").into_inner().stop;
    assert_eq!(stop.len(), 1, "the running attempt is told to stop");
    assert!(acquire(&mut s.workers, &w).await.is_none(), "nothing left to lease");
    let e = s.workers.report_events(report(&w, &a, vec![point(1, 3.0)])).await.expect_err("fenced");
    assert_eq!(e.code(), Code::FailedPrecondition);
    s.shutdown().await;
}

#[tokio::test]
async fn an_attempt_that_finished_its_job_is_not_told_to_stop() {
    // A heartbeat that left before the attempt's last report can arrive after it: the attempt
    // is over, and a stop would read as a fence (the worker logged "coordinator says stop").
    let (mut s, w) = Server::with_sweep(Duration::from_secs(30), None).await;
    let a = acquire(&mut s.workers, &w).await.expect("job");
    let events = (1..=5).map(|k| point(k, 3.0 - 0.1 * k as f64)).chain([finished(5)]).collect();
    s.workers.report_events(report(&w, &a, events)).await.expect("report");
    let job = s.users.get_job(pb::GetJobRequest { job_id: a.job_id }).await.expect("job").into_inner();
    assert_eq!(job.state, pb::JobState::Succeeded as i32);
    let beat = |attempt| pb::HeartbeatRequest {
        worker_id: w.clone(),
        running: vec![pb::AttemptRef { job_id: a.job_id, attempt }],
    };
    let stop = s.workers.heartbeat(beat(a.attempt)).await.expect("heartbeat").into_inner().stop;
    assert!(stop.is_empty(), "the attempt that finished the job: {stop:?}");
    // Any other attempt of that job is still told to stop.
    let stop = s.workers.heartbeat(beat(a.attempt + 1)).await.expect("heartbeat").into_inner().stop;
    assert_eq!(stop, vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt + 1 }]);
    s.shutdown().await;
}
