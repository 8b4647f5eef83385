//! End to end with real processes on loopback: a coordinator, workers and ladder-train children.
//! Sweeps complete with every curve whole; a worker or a trainer killed with SIGKILL, or the
//! coordinator killed and restarted, loses nothing acknowledged, and retries resume from checkpoints.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use tonic::transport::Channel;

/// The cluster tests share two cores: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn bin(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_ladder-worker")).parent().expect("bin dir").to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
        let st = Command::new(cargo)
            .current_dir(root)
            .args(["build", "--bins", "-p", "ladder-coordinator", "-p", "ladder-trainer"])
            .status()
            .expect("cargo build");
        assert!(st.success(), "building the other binaries failed");
    }
    path
}

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn coordinator(data: &Path, port: u16) -> Proc {
    coordinator_in(Command::new(bin("ladder-coordinator")), data, &format!("127.0.0.1:{port}"), 1500)
}

/// Starts the coordinator through `cmd` (the binary, or a wrapper such as `ip netns exec`).
fn coordinator_in(mut cmd: Command, data: &Path, listen: &str, lease_ttl_ms: u64) -> Proc {
    std::fs::create_dir_all(data).expect("mkdir");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("coordinator.log")).expect("log");
    let mut child = cmd
        .args(["--listen", listen, "--lease-ttl-ms", &lease_ttl_ms.to_string(), "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn coordinator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert!(line.starts_with("listening on"), "coordinator said {line:?}");
    Proc(child)
}

fn worker(port: u16, dir: &Path, name: &str) -> Proc {
    worker_with(port, dir, name, &[])
}

fn worker_with(port: u16, dir: &Path, name: &str, extra: &[&str]) -> Proc {
    worker_in(Command::new(bin("ladder-worker")), &format!("http://127.0.0.1:{port}"), dir, name, extra)
}

/// Starts a worker through `cmd` (the binary, or a wrapper such as `ip netns exec`).
fn worker_in(mut cmd: Command, coordinator: &str, dir: &Path, name: &str, extra: &[&str]) -> Proc {
    std::fs::create_dir_all(dir).expect("mkdir");
    let log = std::fs::File::create(dir.join("worker.log")).expect("log");
    let child = cmd
        .args(["--coordinator", coordinator, "--slots", "cpu", "--name", name])
        .args(extra)
        .arg("--work-dir")
        .arg(dir)
        .arg("--trainer")
        .arg(bin("ladder-train"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn worker");
    Proc(child)
}

/// GET /metrics over a plain socket; None while nothing listens yet.
fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}

async fn connect(port: u16) -> LadderClient<Channel> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("url").connect_lazy();
    LadderClient::new(channel)
}

/// A first-order Markov source over 32 symbols, registered as dataset "markov".
async fn register_markov(users: &mut LadderClient<Channel>) {
    let mut s = 7u64;
    let mut tok = 0u16;
    let mut sample = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                tok = ((u64::from(tok) * 7 + (s >> 61)) % 32) as u16;
                tok.to_le_bytes()
            })
            .collect()
    };
    let (train, val) = (sample(60_000), sample(4_000));
    let header = pb::DatasetHeader {
        name: "markov".into(),
        meta_json: String::new(),
        train_bytes: train.len() as u64,
        val_bytes: val.len() as u64,
        vocab: 32,
    };
    let msgs = vec![
        pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(header)) },
        pb::DatasetUpload {
            part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: "train".into(), data: train })),
        },
        pb::DatasetUpload {
            part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: "val".into(), data: val })),
        },
    ];
    let mut delay = Duration::from_millis(50);
    for _ in 0..40 {
        match users.register_dataset(tokio_stream::iter(msgs.clone())).await {
            Ok(_) => return,
            Err(_) => tokio::time::sleep(delay).await,
        }
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    panic!("could not register the dataset");
}

fn spec(name: &str, shapes: &str, seeds: &str, steps: u64) -> String {
    format!(
        r#"name = "{name}"
dataset = "markov"
seeds = {seeds}
[model]
n_ctx = 32
d_head = 16
shapes = {shapes}
[train]
batch_tokens = 512
micro_batch = 4
steps = {steps}
lr = 0.01
warmup_steps = 5
eval_every = 20
eval_windows = 16
checkpoint_every = 25
[resources]
device = "cpu"
max_restarts = 3
threads = 1
"#
    )
}

async fn submit(users: &mut LadderClient<Channel>, spec: &str) -> pb::Sweep {
    let r = users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec.into() }).await.expect("submit");
    r.into_inner().sweep.expect("sweep")
}

async fn jobs(users: &mut LadderClient<Channel>, sweep: &str) -> Vec<pb::Job> {
    users.list_jobs(pb::ListJobsRequest { sweep: sweep.into() }).await.map(|r| r.into_inner().jobs).unwrap_or_default()
}

/// Polls until `done` holds for the sweep's jobs, tolerating an unreachable coordinator.
async fn wait_for(
    users: &mut LadderClient<Channel>,
    sweep: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&[pb::Job]) -> bool,
) -> Vec<pb::Job> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let js = jobs(users, sweep).await;
        if !js.is_empty() && done(&js) {
            return js;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {js:#?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn all_succeeded(js: &[pb::Job]) -> bool {
    js.iter().all(|j| j.state == pb::JobState::Succeeded as i32)
}

/// Every step 1..=total exactly once.
async fn assert_whole_curve(users: &mut LadderClient<Channel>, job: &pb::Job) -> Vec<pb::MetricPoint> {
    let c = users.get_curve(pb::GetCurveRequest { job_id: job.id, after_step: 0 }).await.expect("curve").into_inner();
    let steps: Vec<u64> = c.points.iter().map(|p| p.step).collect();
    assert_eq!(steps, (1..=job.total_steps).collect::<Vec<_>>(), "job {} curve", job.id);
    assert!(c.points.iter().all(|p| p.train_loss.is_finite()));
    c.points
}

fn trainer_pids(job_id: u64) -> Vec<u32> {
    let needle = format!("job-{job_id}-a");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("ladder-train") && cmd.contains(&needle) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_on_two_workers_completes_with_whole_curves() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let _c = coordinator(&tmp.path().join("coord"), port);
    let metrics_port = free_port();
    let maddr = format!("127.0.0.1:{metrics_port}");
    let _w1 = worker_with(port, &tmp.path().join("w1"), "w1", &["--metrics-listen", &maddr]);
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
    let port = free_port();
    let _c = coordinator(&tmp.path().join("coord"), port);
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
    let port = free_port();
    let data = tmp.path().join("coord");
    let c = coordinator(&data, port);
    let _w1 = worker(port, &tmp.path().join("w1"), "w1");
    let _w2 = worker(port, &tmp.path().join("w2"), "w2");
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &spec("restart", "[[1, 32], [2, 32]]", "[0, 1]", 120)).await;
    let js = wait_for(&mut users, "restart", 120, "progress", |js| js.iter().map(|j| j.step).sum::<u64>() >= 60).await;
    // Everything readable now was acknowledged durably.
    let mut before = Vec::new();
    for j in &js {
        let c = users.get_curve(pb::GetCurveRequest { job_id: j.id, after_step: 0 }).await.expect("curve").into_inner();
        before.push((j.id, c.points));
    }
    drop(c); // SIGKILL
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _c = coordinator(&data, port);
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
    let port = free_port();
    let _c = coordinator(&tmp.path().join("coord"), port);
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
    let hosts = match Hosts::new() {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "skipping multi_host_link_cut_moves_the_job_and_fences_the_cut_attempt: network namespaces unavailable here (needs root and iproute2): {e}"
            );
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let coord = in_ns(&hosts.names[0], &bin("ladder-coordinator"));
    let _c = coordinator_in(coord, &tmp.path().join("coord"), "0.0.0.0:7070", 2000);
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
    let after =
        users.get_curve(pb::GetCurveRequest { job_id: done[0].id, after_step: 0 }).await.expect("curve").into_inner();
    assert_eq!(after.points, pts, "the fenced attempt changed the curve");
    let job = users.get_job(pb::GetJobRequest { job_id: done[0].id }).await.expect("job").into_inner();
    assert_eq!((job.state, job.attempt), (pb::JobState::Succeeded as i32, last_attempt));
}
