//! What the coordinator's benchmarks share: the real `ladder-coordinator` as a process (its CPU
//! and memory its own), percentiles, and simulated workers' registration.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ladder_proto::pb;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use tonic::transport::Channel;

pub fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[((v.len() - 1) as f64 * p).round() as usize] }
}

/// The coordinator under test, as its own process (its CPU and memory are its own).
pub struct Coordinator {
    pub child: Child,
    pub addr: String,
    /// The web page's address, when it serves one.
    pub page: Option<String>,
    /// The store's folder.
    pub dir: tempfile::TempDir,
}

impl Coordinator {
    pub fn start() -> Self {
        Self::start_with(None, false)
    }

    /// With `fsyncs`: run under `strace --seccomp-bpf` (stopped only at fsync and fdatasync),
    /// logging each with its wall-clock time to that file.
    /// With `page`: serve the web page too (`--http-listen`).
    pub fn start_with(fsyncs: Option<&std::path::Path>, page: bool) -> Self {
        Self::spawn(fsyncs, page, &[])
    }

    /// [`Self::start_with`], with more arguments for the coordinator.
    pub fn spawn(fsyncs: Option<&std::path::Path>, page: bool, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        // LADDER_BENCH_COORDINATOR: another build to measure (an older commit's, for before/after).
        let bin = std::env::var("LADDER_BENCH_COORDINATOR")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ladder-coordinator").into());
        let mut cmd = match fsyncs {
            Some(log) => {
                let mut c = Command::new("strace");
                c.args(["-f", "--seccomp-bpf", "-ttt", "-e", "trace=fsync,fdatasync", "-o"]).arg(log).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        if page {
            cmd.args(["--http-listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "--lease-ttl-ms", "60000", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .env("LADDER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ladder-coordinator");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read");
        let addr = line.trim().strip_prefix("listening on ").expect("listening line").to_string();
        let page = page.then(|| {
            line.clear();
            out.read_line(&mut line).expect("read");
            let url = line.trim().strip_prefix("page at http://").expect("page line");
            url.trim_end_matches('/').to_string()
        });
        Coordinator { child, addr, page, dir }
    }

    pub fn stat(&self, key: &str) -> f64 {
        status_mib(self.pid(), key)
    }

    /// Resident memory now and at its peak, MiB.
    pub fn rss_mib(&self) -> (f64, f64) {
        (self.stat("VmRSS:"), self.stat("VmHWM:"))
    }

    /// CPU seconds (user + system) so far.
    pub fn cpu_s(&self) -> f64 {
        cpu_s(&self.pid().to_string())
    }

    /// The coordinator's pid: the child's, or under strace the child's only child (a wrapper
    /// that execs the coordinator keeps the child's pid, whatever it forked before).
    pub fn pid(&self) -> u32 {
        let id = self.child.id();
        let comm = std::fs::read_to_string(format!("/proc/{id}/comm")).unwrap_or_default();
        if comm.trim() != "strace" {
            return id;
        }
        std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
            .unwrap_or(id)
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        // The coordinator first: under strace, killing the tracer first fails its next fsync.
        let pid = self.pid();
        if pid != self.child.id() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of process `pid` ("self": this one).
pub fn cpu_s(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime: fields 14 and 15, in USER_HZ (100)
}

pub fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy()
}

pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Transport errors (a connection reset in a burst of 1000 connects) retried at registration, as a
/// worker retries them; counted, and printed with the run.
pub static RETRIED: AtomicU64 = AtomicU64::new(0);

pub async fn register(client: &mut WorkerServiceClient<Channel>, w: usize) -> String {
    let req = pb::RegisterRequest { name: format!("sim{w}"), slots: vec!["cpu".into()], ..Default::default() };
    for _ in 0..20 {
        match client.register(req.clone()).await {
            Ok(r) => return r.into_inner().worker_id,
            Err(e) if e.code() == tonic::Code::Unknown || e.code() == tonic::Code::Unavailable => {
                RETRIED.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("register: {e}"),
        }
    }
    panic!("register: 20 transport errors in a row")
}

/// A memory line of process `pid`'s /proc status (`VmRSS:`, `VmHWM:`), MiB; NaN once it is gone.
pub fn status_mib(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
