//! Issue 19, findings 1 and 2, with real processes on simulated GPUs (`--simulate-gpus`: each
//! device's memory given, its attempts trained on the CPU): a fleet of mixed devices fails no job
//! across coordinator restarts, and slots packed onto one device never plan past its memory.
use std::time::Duration;

use ladder_proto::pb;
use ladder_testkit::procs::*;

/// The value of the sample line that starts with `series`.
use ladder_testkit::procs::metric as gauge;

fn on(device: &str, s: String) -> String {
    s.replace("device = \"cpu\"", &format!("device = \"{device}\""))
}

fn none_failed(js: &[pb::Job]) {
    for j in js {
        assert_ne!(j.state, pb::JobState::Failed as i32, "job {} failed: {}", j.id, j.failure_message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_simulated_fleet_fails_no_job_across_coordinator_restarts() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("coord");
    let c = coordinator(&data);
    let port = c.port;
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &on("cuda", spec("gpu", "[[1, 32]]", "[0, 1, 2, 3]", 40))).await;
    submit(&mut users, &on("auto", spec("any", "[[1, 32]]", "[0, 1]", 40))).await;
    // A restart: the new process has seen no GPU. The first to ask is one no job fits (512 MiB;
    // each needs the CUDA context alone, 768 MiB).
    drop(c);
    let c = coordinator_on(&data, port);
    let mut users = connect(port).await;
    let _small =
        worker_with(port, &tmp.path().join("small"), "small", &["--slots", "cuda:0", "--simulate-gpus", "0=512MiB"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut waiting = Vec::new();
    for sweep in ["gpu", "any"] {
        let js = jobs(&mut users, sweep).await;
        none_failed(&js);
        waiting.extend(js.into_iter().filter(|j| j.state == pb::JobState::Queued as i32));
    }
    assert_eq!(waiting.len(), 6, "every job still queued");
    for j in &waiting {
        assert!(j.waiting.contains("device memory"), "job {} says why it waits: {:?}", j.id, j.waiting);
    }
    // A GPU that fits two at once, and a CPU for the `auto` jobs; the coordinator restarts again
    // while they run.
    let _big =
        worker_with(port, &tmp.path().join("big"), "big", &["--slots", "cuda:0,cuda:0", "--simulate-gpus", "0=2GiB"]);
    let _cpu = worker(port, &tmp.path().join("cpu"), "cpu");
    wait_for(&mut users, "gpu", 120, "a job to run", |js| js.iter().any(|j| j.step > 5)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _c = coordinator_on(&data, port);
    let mut users = connect(port).await;
    for sweep in ["gpu", "any"] {
        let js = wait_for(&mut users, sweep, 300, "every job to end", |js| {
            js.iter().all(|j| j.state != pb::JobState::Queued as i32 && j.state != pb::JobState::Running as i32)
        })
        .await;
        none_failed(&js);
        assert!(all_succeeded(&js), "{sweep}: every job succeeded");
        for j in &js {
            assert_whole_curve(&mut users, j).await;
        }
    }
    let small_log = std::fs::read_to_string(tmp.path().join("small").join("worker.log")).unwrap_or_default();
    assert!(!small_log.contains("attempt started"), "the 512 MiB GPU ran nothing:\n{small_log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_slots_on_one_simulated_device_never_plan_past_its_memory() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let c = coordinator(&tmp.path().join("coord"));
    let mut users = connect(c.port).await;
    register_markov(&mut users).await;
    let sweep = submit(&mut users, &on("cuda", spec("packed", "[[1, 32]]", "[0, 1, 2, 3, 4, 5]", 60))).await;
    let estimate = {
        let js = jobs(&mut users, &sweep.name).await;
        let cfg = ladder_core::job::JobConfig::try_from(js[0].config.as_ref().expect("config")).expect("config");
        let job = cfg.resolve(Some(32)).expect("resolves");
        ladder_core::memory::MemoryEstimate::training(&job.shape, cfg.micro_seqs(), 1).total()
    };
    // 2 GiB, 92 % of it usable: room for two of these jobs, never three.
    let (_w, maddr) = worker_with_metrics_and(
        c.port,
        &tmp.path().join("w"),
        "w",
        &["--slots", "cuda:0,cuda:0,cuda:0,cuda:0", "--simulate-gpus", "0=2GiB", "--cpu-cores", "2"],
    );
    let mut most_children = 0.0f64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(m) = scrape(&maddr) {
            let budget = gauge(&m, "ladder_worker_gpu_budget_bytes{device=\"0\"}");
            let reserved = gauge(&m, "ladder_worker_gpu_reserved_bytes{device=\"0\"}");
            assert!(reserved <= budget, "reserved {reserved} over the budget {budget}");
            most_children = most_children.max(gauge(&m, "ladder_worker_children"));
        }
        let js = jobs(&mut users, &sweep.name).await;
        none_failed(&js);
        if all_succeeded(&js) && js.len() == 6 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sweep did not finish: {js:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = scrape(&maddr).expect("scrape");
    let (budget, peak) = (
        gauge(&m, "ladder_worker_gpu_budget_bytes{device=\"0\"}"),
        gauge(&m, "ladder_worker_gpu_reserved_peak_bytes{device=\"0\"}"),
    );
    assert_eq!(budget, (2.0 * (1u64 << 30) as f64 * 0.92).floor());
    assert!(peak <= budget, "peak {peak} over the budget {budget}");
    assert!(peak >= 2.0 * estimate as f64, "two jobs shared the device (peak {peak}, one job {estimate})");
    assert!(most_children <= 2.0, "at most two trainers at once, saw {most_children}");
    // A slot releases its reservation after its last report: the coordinator may call a job
    // succeeded a moment before. Every reservation is back within seconds.
    ladder_testkit::server::eventually("every GPU reservation released after the sweep", || async {
        scrape(&maddr).map(|m| gauge(&m, "ladder_worker_gpu_reserved_bytes{device=\"0\"}")) == Some(0.0)
    })
    .await;
}
