//! Issue 19, findings 1 and 2, at the coordinator: a job that no registered slot can hold is never
//! failed for it (not after a restart either, when the coordinator has forgotten which GPUs asked);
//! it waits and says why until a slot that fits asks. A job that ran out of memory beside others
//! on its GPU is retried alone, with no restart charged.
use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::pb;
use ladder_testkit::server::*;

const GIB: u64 = 1 << 30;

async fn gpu_worker(s: &mut Server, name: &str, memory: u64) -> String {
    let req = pb::RegisterRequest { name: name.into(), slots: vec!["cuda:0".into()], slot_memory_bytes: vec![memory] };
    s.workers.register(req).await.expect("register").into_inner().worker_id
}

async fn acquire_gpu(s: &mut Server, worker: &str, free: u64, total: u64) -> Option<pb::Assignment> {
    let req = pb::AcquireRequest {
        worker_id: worker.into(),
        slot: "cuda:0".into(),
        wait_ms: 100,
        memory_bytes: free,
        memory_total_bytes: total,
        ..Default::default()
    };
    s.workers.acquire(req).await.expect("acquire").into_inner().assignment
}

async fn jobs(s: &mut Server, sweep: &str) -> Vec<pb::Job> {
    s.users.list_jobs(pb::ListJobsRequest { sweep: sweep.into() }).await.expect("jobs").into_inner().jobs
}

#[tokio::test]
async fn a_job_no_gpu_can_hold_waits_across_a_restart_and_runs_once_one_can() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let spec = SPEC.replace("device = \"cpu\"", "device = \"cuda\"").replace("name = \"fence\"", "name = \"huge\"");
    {
        let mut s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
        register_dataset(&mut s.users).await;
        s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
        s.shutdown().await;
    }
    // A restart: the coordinator has seen no GPU yet. The first to ask is one of 512 MiB, which
    // holds no job of this sweep (each needs the CUDA context alone, 768 MiB).
    let mut s = start(Store::open(&path).expect("reopen"), Duration::from_secs(30)).await;
    let small = gpu_worker(&mut s, "small", GIB / 2).await;
    assert!(acquire_gpu(&mut s, &small, GIB / 2, GIB / 2).await.is_none(), "nothing fits 512 MiB");
    let js = jobs(&mut s, "huge").await;
    assert_eq!(js.len(), 2);
    for j in &js {
        assert_eq!(j.state, pb::JobState::Queued as i32, "job {} waits, never failed: {}", j.id, j.failure_message);
        assert!(
            j.waiting.contains("GiB of device memory by estimate") && j.waiting.contains("0.50 GiB"),
            "{}",
            j.waiting
        );
    }
    // A GPU that fits registers: the reason goes, and the jobs run there.
    let big = gpu_worker(&mut s, "big", 80 * GIB).await;
    assert!(jobs(&mut s, "huge").await.iter().all(|j| j.waiting.is_empty()), "a live slot fits now");
    let a = acquire_gpu(&mut s, &big, 80 * GIB, 80 * GIB).await.expect("the big GPU takes one");
    assert_eq!(a.attempt, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn out_of_memory_beside_others_is_retried_alone_without_a_restart() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("device = \"cpu\"", "device = \"cuda\"").replace("seeds = [0, 1]", "seeds = [0]");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = gpu_worker(&mut s, "w", 16 * GIB).await;
    let a = acquire_gpu(&mut s, &w, 16 * GIB, 16 * GIB).await.expect("a job");
    let oom = pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Failed(pb::AttemptFailed {
            kind: pb::FailureKind::OutOfMemory as i32,
            message: "CUDA out of memory".into(),
            shared_device: true,
        })),
    };
    s.workers.report_events(report(&w, &a, vec![oom])).await.expect("report");
    let j = s.users.get_job(pb::GetJobRequest { job_id: a.job_id }).await.expect("job").into_inner();
    assert_eq!((j.state, j.restarts), (pb::JobState::Queued as i32, 0), "requeued, no restart charged");
    assert!(j.failure_message.contains("retried alone"), "{}", j.failure_message);
    // While another job holds part of the device, it is not leased; on an idle device it is.
    assert!(acquire_gpu(&mut s, &w, 12 * GIB, 16 * GIB).await.is_none(), "not beside others");
    let b = acquire_gpu(&mut s, &w, 16 * GIB, 16 * GIB).await.expect("alone on the idle device");
    assert_eq!((b.job_id, b.attempt), (a.job_id, 2));
    s.shutdown().await;
}

#[tokio::test]
async fn an_idle_slot_does_not_walk_the_queue_again_until_a_job_joins_it() {
    let store = Store::in_memory().expect("store");
    let mut s = start(store.clone(), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    // 2,000 jobs that only a GPU can run, and a worker with a CPU slot.
    let gpu = SPEC
        .replace("device = \"cpu\"", "device = \"cuda\"")
        .replace("name = \"fence\"", "name = \"gpu\"")
        .replace("seeds = [0, 1]", &format!("seeds = {:?}", (0..2000).collect::<Vec<u64>>()));
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: gpu, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "cpu-only").await;
    let idle = pb::AcquireRequest { worker_id: w.clone(), slot: "cpu".into(), wait_ms: 0, ..Default::default() };
    assert!(s.workers.acquire(idle.clone()).await.expect("acquire").into_inner().assignment.is_none());
    let ops = store.stats().ops.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..20 {
        assert!(s.workers.acquire(idle.clone()).await.expect("acquire").into_inner().assignment.is_none());
    }
    let after = store.stats().ops.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after, ops, "idle Acquires of a slot nothing fits reached the writer {} times", after - ops);
    // A job it can run joins the queue: the next Acquire finds it.
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() })
        .await
        .expect("submit");
    let a = s.workers.acquire(idle).await.expect("acquire").into_inner().assignment;
    assert!(a.is_some(), "the CPU job is leased");
    s.shutdown().await;
}
