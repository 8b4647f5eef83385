//! End to end with real processes on loopback: a coordinator, workers and ladder-train children.
//! Sweeps complete with every curve whole; a worker or a trainer killed with SIGKILL, or the
//! coordinator killed and restarted, loses nothing acknowledged, and retries resume from checkpoints.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_testkit::procs::*;
use tonic::transport::Channel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_on_two_workers_completes_with_whole_curves() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let _c = coordinator(&tmp.path().join("coord"));
    let port = _c.port;
    let (_w1, maddr) = worker_with_metrics(port, &tmp.path().join("w1"), "w1");
    let _w2 = worker(port, &tmp.path().join("w2"), "w2");
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &spec("four", "[[1, 32], [2, 32]]", "[0, 1]", 40)).await;
    // The worker's /metrics shows its slot and, while it trains, its child.
    let mut saw_child = false;
    for _ in 0..600 {
        if let Some(m) = scrape(&maddr) {
            assert!(m.contains("ladder_worker_slots 1"), "{m}");
            if m.contains("ladder_worker_children 1") {
                saw_child = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_child, "w1's /metrics never showed a running child");
    let js = wait_for(&mut users, "four", 240, "4 jobs to succeed", all_succeeded).await;
    let m = scrape(&maddr).expect("scrape after the sweep");
    assert!(m.contains("ladder_worker_children 0"), "{m}");
    assert!(m.contains("ladder_worker_upload_backlog{kind=\"events\"} 0"), "{m}");
    assert_eq!(js.len(), 4);
    for j in &js {
        let pts = assert_whole_curve(&mut users, j).await;
        assert!(pts[39].train_loss < pts[0].train_loss, "job {} learned nothing", j.id);
    }
    let sweep = users.get_sweep(pb::GetSweepRequest { sweep: "four".into() }).await.expect("sweep").into_inner();
    assert_eq!((sweep.state, sweep.jobs_succeeded), (pb::SweepState::Done as i32, 4));
    for w in ["w1", "w2"] {
        let log = std::fs::read_to_string(tmp.path().join(w).join("worker.log")).unwrap_or_default();
        assert!(log.contains("attempt started"), "{w} ran no attempt:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_and_killed_trainer_resume_from_checkpoints() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let _c = coordinator(&tmp.path().join("coord"));
    let port = _c.port;
    let mut users = connect(port).await;
    register_markov(&mut users).await;

    // 1. The worker is killed with SIGKILL mid-job; another worker finishes the job.
    let w1 = worker(port, &tmp.path().join("w1"), "w1");
    submit(&mut users, &spec("kill-worker", "[[2, 32]]", "[0]", 200)).await;
    wait_for(&mut users, "kill-worker", 120, "a checkpoint", |js| js[0].checkpoint_step >= 25).await;
    drop(w1); // SIGKILL
    let _w2 = worker(port, &tmp.path().join("w2"), "w2");
    let js = wait_for(&mut users, "kill-worker", 240, "the job to finish elsewhere", all_succeeded).await;
    assert!(js[0].attempt >= 2, "{:?}", js[0]);
    assert!(js[0].resumed_from_step >= 25, "attempt {} started fresh", js[0].attempt);
    assert_whole_curve(&mut users, &js[0]).await;

    // 2. Only the trainer child is killed with SIGKILL; the worker reports it and the retry resumes.
    submit(&mut users, &spec("kill-trainer", "[[2, 32]]", "[0]", 200)).await;
    let js = wait_for(&mut users, "kill-trainer", 120, "a checkpoint", |js| js[0].checkpoint_step >= 25).await;
    let pids = trainer_pids(js[0].id);
    assert!(!pids.is_empty(), "no ladder-train child found for job {}", js[0].id);
    for pid in pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let js = wait_for(&mut users, "kill-trainer", 240, "the job to finish after the crash", all_succeeded).await;
    assert_eq!(js[0].attempt, 2, "{:?}", js[0]);
    assert!(js[0].resumed_from_step >= 25);
    assert_whole_curve(&mut users, &js[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_and_restarted_loses_nothing_acknowledged() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("coord");
    let first = coordinator(&data);
    let port = first.port;
    let c = first;
    let _w1 = worker(port, &tmp.path().join("w1"), "w1");
    let _w2 = worker(port, &tmp.path().join("w2"), "w2");
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &spec("restart", "[[1, 32], [2, 32]]", "[0, 1]", 120)).await;
    let js = wait_for(&mut users, "restart", 120, "progress", |js| js.iter().map(|j| j.step).sum::<u64>() >= 60).await;
    // Everything readable now was acknowledged durably.
    let mut before = Vec::new();
    for j in &js {
        before.push((j.id, curve(&mut users, j.id).await));
    }
    drop(c); // SIGKILL
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _c = coordinator_on(&data, port);
    let js = wait_for(&mut users, "restart", 300, "the sweep to finish after the restart", all_succeeded).await;
    for j in &js {
        let after = assert_whole_curve(&mut users, j).await;
        let (_, pts) = before.iter().find(|(id, _)| *id == j.id).expect("job");
        for p in pts {
            assert_eq!(after[(p.step - 1) as usize], *p, "job {} step {} changed across the restart", j.id, p.step);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_checkpoints_uploads_and_releases_the_lease() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let _c = coordinator(&tmp.path().join("coord"));
    let port = _c.port;
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    let mut w1 = worker(port, &tmp.path().join("w1"), "w1");
    // No periodic checkpoints: any checkpoint comes from the SIGTERM.
    let text = spec("sigterm", "[[2, 32]]", "[0]", 300).replace("checkpoint_every = 25", "checkpoint_every = 100000");
    submit(&mut users, &text).await;
    wait_for(&mut users, "sigterm", 120, "progress", |js| js[0].step >= 20).await;
    let pid = w1.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = w1.0.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "the worker did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "worker exit {status:?}");
    let js = jobs(&mut users, "sigterm").await;
    let j = &js[0];
    assert_eq!(j.state, pb::JobState::Queued as i32, "released, not lost: {j:?}");
    assert_eq!(j.failure, pb::FailureKind::Unspecified as i32, "a release is not a failure: {j:?}");
    assert!(j.checkpoint_step >= 20 && j.checkpoint_step == j.step, "checkpoint at the stop: {j:?}");
    let released_at = j.checkpoint_step;
    let _w2 = worker(port, &tmp.path().join("w2"), "w2");
    let js = wait_for(&mut users, "sigterm", 240, "the job to finish after the release", all_succeeded).await;
    assert_eq!((js[0].attempt, js[0].resumed_from_step), (2, released_at));
    assert_whole_curve(&mut users, &js[0]).await;
}

/// Three network namespaces joined by veth pairs: the coordinator's host C, and worker hosts W1
/// and W2, each on its own link to C; the test talks to C over a link from the root namespace.
struct Hosts {
    names: [String; 3],
    links: [String; 2],
    root_link: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

impl Hosts {
    fn new() -> Result<Hosts, String> {
        let s = std::process::id() % 100_000;
        let names = [format!("lc{s}"), format!("lw1{s}"), format!("lw2{s}")];
        // A root-side link left by an interrupted run would shadow this run's subnet.
        let listing = Command::new("ip").args(["-br", "addr"]).output().map_err(|e| format!("ip: {e}"))?;
        for line in String::from_utf8_lossy(&listing.stdout).lines().filter(|l| l.contains("10.213.3.2/")) {
            let stale = line.split(['@', ' ']).next().unwrap_or_default();
            let _ = ip(&["link", "del", stale]);
        }
        let hosts =
            Hosts { names: names.clone(), links: [format!("l1{s}"), format!("l2{s}")], root_link: format!("lr{s}") };
        let [c, w1, w2] = &names;
        for n in &names {
            ip(&["netns", "add", n])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        let (lr, lcr) = (format!("lr{s}"), format!("lcr{s}"));
        ip(&["link", "add", &lr, "type", "veth", "peer", "name", &lcr, "netns", c])?;
        ip(&["addr", "add", "10.213.3.2/24", "dev", &lr])?;
        ip(&["link", "set", &lr, "up"])?;
        ip(&["-n", c, "addr", "add", "10.213.3.1/24", "dev", &lcr])?;
        ip(&["-n", c, "link", "set", &lcr, "up"])?;
        for (k, w) in [(1, w1), (2, w2)] {
            let (cside, wside) = (format!("lc{k}{s}"), hosts.links[k - 1].clone());
            ip(&["-n", c, "link", "add", &cside, "type", "veth", "peer", "name", &wside, "netns", w])?;
            ip(&["-n", c, "addr", "add", &format!("10.213.{k}.1/24"), "dev", &cside])?;
            ip(&["-n", c, "link", "set", &cside, "up"])?;
            ip(&["-n", w, "addr", "add", &format!("10.213.{k}.2/24"), "dev", &wside])?;
            ip(&["-n", w, "link", "set", &wside, "up"])?;
        }
        Ok(hosts)
    }

    /// Takes worker `k`'s (1 or 2) link down or up, from its own side.
    fn link(&self, k: usize, up: bool) {
        ip(&["-n", &self.names[k], "link", "set", &self.links[k - 1], if up { "up" } else { "down" }]).expect("link");
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends inside it, and so their peers, once the
        // last process in it has gone; the root-side end is deleted here in any case.
        let _ = ip(&["link", "del", &self.root_link]);
        for n in &self.names {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

fn in_ns(ns: &str, program: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_host_link_cut_moves_the_job_and_fences_the_cut_attempt() {
    let _serial = SERIAL.lock().await;
    let needs = Hosts::new().map_err(|e| format!("network namespaces unavailable here (needs root and iproute2): {e}"));
    let Some(hosts) = ladder_testkit::gate("multi_host_link_cut_moves_the_job_and_fences_the_cut_attempt", needs)
    else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    // A closed network of namespaces: no token, which the coordinator allows only when told.
    let mut coord = in_ns(&hosts.names[0], &bin("ladder-coordinator"));
    coord.arg("--insecure-no-token");
    let _c = coordinator_in(coord, &tmp.path().join("coord"), "0.0.0.0:7070", 2000).0;
    let mut workers = Vec::new();
    for k in 1..=2 {
        let cmd = in_ns(&hosts.names[k], &bin("ladder-worker"));
        let url = format!("http://10.213.{k}.1:7070");
        workers.push(worker_in(cmd, &url, &tmp.path().join(format!("w{k}")), &format!("w{k}"), &[]));
    }
    let channel = Channel::from_shared("http://10.213.3.1:7070").expect("url").connect_lazy();
    let mut users = LadderClient::new(channel);
    register_markov(&mut users).await;

    // A sweep completes across the two hosts.
    submit(&mut users, &spec("hosts", "[[1, 32], [2, 32]]", "[0]", 40)).await;
    let js = wait_for(&mut users, "hosts", 240, "the sweep across hosts", all_succeeded).await;
    for j in &js {
        assert_whole_curve(&mut users, j).await;
    }

    // One long job; cut its worker's link once it has a checkpoint.
    submit(&mut users, &spec("cut", "[[2, 32]]", "[0]", 500)).await;
    let running = wait_for(&mut users, "cut", 120, "a checkpoint", |js| js[0].checkpoint_step >= 25).await;
    let holder = &running[0].worker_id;
    let k = if holder.starts_with("w1-") { 1 } else { 2 };
    hosts.link(k, false);
    let moved = wait_for(&mut users, "cut", 120, "the job to move", |js| {
        js[0].attempt >= 2 && js[0].worker_id != *holder && !js[0].worker_id.is_empty()
    })
    .await;
    assert!(moved[0].resumed_from_step >= 25, "resumed from {}", moved[0].resumed_from_step);
    let done = wait_for(&mut users, "cut", 300, "the moved job to finish", all_succeeded).await;
    let pts = assert_whole_curve(&mut users, &done[0]).await;
    let last_attempt = done[0].attempt;
    // Points are keyed by step: the cut attempt's points up to its last acknowledged report stay
    // (the resumed attempt recomputes the same steps), and every later point is the new attempt's.
    let cut_last = pts.iter().filter(|p| p.attempt < last_attempt).map(|p| p.step).max().unwrap_or(0);
    assert!(cut_last >= 25 && cut_last < done[0].total_steps, "the cut attempt reported up to {cut_last}");
    assert!(pts.iter().filter(|p| p.step > cut_last).all(|p| p.attempt == last_attempt));

    // The link returns: the cut-off attempt is fenced, and nothing it sends changes the curve.
    hosts.link(k, true);
    let log = tmp.path().join(format!("w{k}")).join("worker.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("fenced by the coordinator") || text.contains("coordinator says stop") {
            break;
        }
        assert!(Instant::now() < deadline, "w{k} never learned it was fenced:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = curve(&mut users, done[0].id).await;
    assert_eq!(after, pts, "the fenced attempt changed the curve");
    let job = users.get_job(pb::GetJobRequest { job_id: done[0].id }).await.expect("job").into_inner();
    assert_eq!((job.state, job.attempt), (pb::JobState::Succeeded as i32, last_attempt));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_dataset_cache_is_fetched_again() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let _c = coordinator(&tmp.path().join("coord"));
    let port = _c.port;
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    let wdir = tmp.path().join("w");
    {
        let _w = worker(port, &wdir, "w");
        submit(&mut users, &spec("cache-a", "[[1, 32]]", "[0]", 20)).await;
        wait_for(&mut users, "cache-a", 120, "the first sweep", all_succeeded).await;
    }
    // Flip a byte of the cached training tokens: the folder still says it is complete.
    let cached = std::fs::read_dir(wdir.join("datasets"))
        .expect("cache")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join(".complete").exists())
        .expect("a cached dataset");
    let train = cached.join("train.bin");
    let mut bytes = std::fs::read(&train).expect("read");
    bytes[10] ^= 0x01;
    std::fs::write(&train, bytes).expect("write");
    let _w = worker(port, &wdir, "w-again");
    submit(&mut users, &spec("cache-b", "[[1, 32]]", "[1]", 20)).await;
    wait_for(&mut users, "cache-b", 120, "the second sweep", all_succeeded).await;
    let log = std::fs::read_to_string(wdir.join("worker.log")).expect("log");
    assert!(log.contains("cached dataset fails its hash"), "{log}");
}
