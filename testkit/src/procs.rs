//! The real binaries as child processes on loopback: a coordinator (which reports the port it
//! bound), workers and their `ladder-train` children; and polling a sweep until a condition holds.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use tonic::transport::Channel;

/// The cluster tests share two cores: one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The folder the test binaries' sibling binaries are built into (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// A workspace binary, built beside the tests. Tests build nothing themselves: a missing binary
/// fails the test with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first (cargo test --workspace and scripts/test.sh do)",
        path.display()
    );
    path
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A coordinator process and the port it bound.
pub struct Coordinator {
    pub proc: Proc,
    pub port: u16,
}

/// A coordinator on 127.0.0.1:0 (leases of 1.5 s); its port is the one it reports.
pub fn coordinator(data: &Path) -> Coordinator {
    coordinator_on(data, 0)
}

/// A coordinator on `port` of 127.0.0.1: a restart binds the port its predecessor reported.
pub fn coordinator_on(data: &Path, port: u16) -> Coordinator {
    let (proc, addr) =
        coordinator_in(Command::new(bin("ladder-coordinator")), data, &format!("127.0.0.1:{port}"), 1500);
    Coordinator { proc, port: addr.port() }
}

/// Starts the coordinator through `cmd` (the binary, or a wrapper such as `ip netns exec`);
/// returns it and the address it reports on its first line ("listening on ADDR").
pub fn coordinator_in(mut cmd: Command, data: &Path, listen: &str, lease_ttl_ms: u64) -> (Proc, std::net::SocketAddr) {
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
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("coordinator said {line:?}"));
    (Proc(child), addr)
}

pub fn worker(port: u16, dir: &Path, name: &str) -> Proc {
    worker_with(port, dir, name, &[])
}

pub fn worker_with(port: u16, dir: &Path, name: &str, extra: &[&str]) -> Proc {
    worker_in(Command::new(bin("ladder-worker")), &format!("http://127.0.0.1:{port}"), dir, name, extra)
}

/// A worker serving its metrics on 127.0.0.1:0; returns it and the metrics address it reports
/// (its first line on stdout, "metrics on ADDR").
pub fn worker_with_metrics(port: u16, dir: &Path, name: &str) -> (Proc, String) {
    worker_with_metrics_and(port, dir, name, &[])
}

/// [`worker_with_metrics`] with more arguments.
pub fn worker_with_metrics_and(port: u16, dir: &Path, name: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["--metrics-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut p = spawn_worker(
        Command::new(bin("ladder-worker")),
        &format!("http://127.0.0.1:{port}"),
        dir,
        name,
        &args,
        Stdio::piped(),
    );
    let mut line = String::new();
    BufReader::new(p.0.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read");
    let addr = line.trim().strip_prefix("metrics on ").unwrap_or_else(|| panic!("worker said {line:?}")).to_string();
    (p, addr)
}

/// Starts a worker through `cmd` (the binary, or a wrapper such as `ip netns exec`).
pub fn worker_in(cmd: Command, coordinator: &str, dir: &Path, name: &str, extra: &[&str]) -> Proc {
    spawn_worker(cmd, coordinator, dir, name, extra, Stdio::null())
}

fn spawn_worker(mut cmd: Command, coordinator: &str, dir: &Path, name: &str, extra: &[&str], out: Stdio) -> Proc {
    std::fs::create_dir_all(dir).expect("mkdir");
    let log = std::fs::File::create(dir.join("worker.log")).expect("log");
    cmd.args(["--coordinator", coordinator, "--name", name]);
    // One CPU slot unless `extra` names the slots.
    if !extra.contains(&"--slots") {
        cmd.args(["--slots", "cpu"]);
    }
    let child = cmd
        .args(extra)
        .arg("--work-dir")
        .arg(dir)
        .arg("--trainer")
        .arg(bin("ladder-train"))
        .stdout(out)
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn worker");
    Proc(child)
}

/// GET /metrics over a plain socket; None while nothing listens yet.
pub fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}

/// The value of the sample line of a scrape that starts with `series` (name and labels).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

pub async fn connect(port: u16) -> LadderClient<Channel> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("url").connect_lazy();
    LadderClient::new(channel)
}

/// A first-order Markov source over 32 symbols, registered as dataset "markov" (retried while
/// the coordinator starts).
pub async fn register_markov(users: &mut LadderClient<Channel>) {
    let mut state = (7u64, 0u16);
    let train = crate::data::markov_tokens(60_000, &mut state);
    let val = crate::data::markov_tokens(4_000, &mut state);
    let msgs = crate::data::upload("markov", train, val, 32);
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

pub fn spec(name: &str, shapes: &str, seeds: &str, steps: u64) -> String {
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

pub async fn submit(users: &mut LadderClient<Channel>, spec: &str) -> pb::Sweep {
    let r = users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: spec.into(), ..Default::default() })
        .await
        .expect("submit");
    r.into_inner().sweep.expect("sweep")
}

pub async fn jobs(users: &mut LadderClient<Channel>, sweep: &str) -> Vec<pb::Job> {
    users.list_jobs(pb::ListJobsRequest { sweep: sweep.into() }).await.map(|r| r.into_inner().jobs).unwrap_or_default()
}

/// Polls until `done` holds for the sweep's jobs, tolerating an unreachable coordinator.
pub async fn wait_for(
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

pub fn all_succeeded(js: &[pb::Job]) -> bool {
    js.iter().all(|j| j.state == pb::JobState::Succeeded as i32)
}

/// Every step 1..=total exactly once.
pub async fn assert_whole_curve(users: &mut LadderClient<Channel>, job: &pb::Job) -> Vec<pb::MetricPoint> {
    let points = curve(users, job.id).await;
    let steps: Vec<u64> = points.iter().map(|p| p.step).collect();
    // A branch's curve begins after its branch point.
    let first = job.branch.as_ref().map_or(1, |b| b.step + 1);
    assert_eq!(steps, (first..=job.total_steps).collect::<Vec<_>>(), "job {} curve", job.id);
    assert!(points.iter().all(|p| p.train_loss.is_finite()));
    points
}

pub fn trainer_pids(job_id: u64) -> Vec<u32> {
    trainers_matching(&format!("job-{job_id}-a"))
}

/// The running `ladder-train` processes whose command line contains `needle`. argv[0] must be
/// the trainer: a worker's own command line names the trainer too.
pub fn trainers_matching(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        let argv0 = cmd.split('\0').next().unwrap_or_default();
        if argv0.ends_with("ladder-train") && cmd.contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// A job's whole curve, page by page.
pub async fn curve(users: &mut LadderClient<Channel>, job_id: u64) -> Vec<pb::MetricPoint> {
    let mut out = Vec::new();
    let mut after_step = 0;
    loop {
        let page =
            users.get_curve(pb::GetCurveRequest { job_id, after_step, limit: 0 }).await.expect("curve").into_inner();
        out.extend(page.points);
        if page.next_after_step == 0 {
            return out;
        }
        after_step = page.next_after_step;
    }
}

/// A scratch dir for one test; kept for a post-mortem when `LADDER_KEEP_TMP` is set.
pub fn scratch() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().expect("tmp");
    if std::env::var_os("LADDER_KEEP_TMP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}
