//! Randomized faults against real processes on loopback, compared with an uninterrupted run of
//! the same CPU sweep (single-thread jobs, so every step is reproducible bit for bit):
//!
//! - the coordinator killed (SIGKILL) and restarted after 0 to 3 lease lengths, alone: no job is
//!   charged a restart;
//! - trainer children, workers and the coordinator killed at random moments (mid-step,
//!   mid-upload, mid-pack): every curve holds steps 1..S exactly once, and every point equals the
//!   uninterrupted run's bit for bit.
//!
//! The sweep is constant-LR trunks with branches (issue 20): two cooldowns per trunk and a 2×
//! batch window on the small size. A branch that started from any checkpoint but the one it names
//! would differ from the uninterrupted run's branch, and its curve would not begin one step after
//! its branch point. The default retention policy deletes checkpoints all the while (a job keeps
//! its newest two, a checkpoint every 10 steps): a resume or a branch that found its checkpoint
//! gone would start elsewhere and change a point.
//!
//! `cargo test` runs a short schedule (2 kills of each kind). `LADDER_CHAOS_KILLS=20` runs the
//! long one; `LADDER_CHAOS_SEED` picks another schedule. The figures print at the end.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ladder_proto::pb;
use ladder_testkit::procs::*;

const TTL_MS: u64 = 1500;

/// A small seeded generator for the schedule (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kills_per_kind() -> usize {
    std::env::var("LADDER_CHAOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

fn seed() -> u64 {
    std::env::var("LADDER_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261201)
}

/// Everything but wall-clock throughput and the attempt, as exact bit patterns.
fn key(p: &pb::MetricPoint) -> Vec<u64> {
    vec![
        p.step,
        p.tokens,
        p.train_loss.to_bits(),
        p.val_loss.map_or(0, f64::to_bits),
        p.lr.to_bits(),
        p.grad_norm.to_bits(),
        p.gns_small_sq.to_bits(),
        p.gns_big_sq.to_bits(),
        p.b_simple.map_or(0, f64::to_bits),
    ]
}

const SHAPES: &str = "[[1, 32], [2, 32]]";
const SEEDS: &str = "[0, 1]";
const STEPS: u64 = 150;

/// Steps per job: the long run trains longer, so that every fault of its schedule lands mid-job.
fn steps() -> u64 {
    STEPS * (kills_per_kind() as u64 / 2).max(1)
}

/// Constant-LR trunks, each with cooldowns to half and all of its tokens, and a 2× batch window
/// at a third of the small trunk.
fn chaos_spec(name: &str) -> String {
    let tokens = steps() * 512;
    let (half, third) = (tokens / 1024 * 512, tokens / 1536 * 512);
    spec(name, SHAPES, SEEDS, steps())
        .replace("checkpoint_every = 25", "checkpoint_every = 10\nschedule = \"constant\"")
        .replace("max_restarts = 3", "max_restarts = 1000")
        + &format!(
            "[[branch]]\nfrom = \"main\"\ncooldown = {{ to_tokens = [{half}, {tokens}] }}\n\
             [[branch]]\nfrom = \"main\"\nshapes = [[1, 32]]\n\
             batch = {{ at_tokens = [{third}], multipliers = [2], window_tokens = 5120, min_steps = 1 }}\n"
        )
}

/// Curves by the job's place in its sweep (the same in every run of the spec).
async fn curves(
    users: &mut ladder_proto::pb::ladder_client::LadderClient<tonic::transport::Channel>,
    sweep: &str,
) -> HashMap<u32, Vec<pb::MetricPoint>> {
    let mut out = HashMap::new();
    for j in jobs(users, sweep).await {
        let pts = assert_whole_curve(users, &j).await;
        if let Some(b) = &j.branch {
            let first = pts.first().map(|p| p.step);
            assert_eq!(first, Some(b.step + 1), "job {}: a branch's curve begins after its branch point", j.id);
        }
        out.insert(j.index, pts);
    }
    out
}

/// The trainer children running under `root`.
fn trainers_under(root: &Path) -> Vec<u32> {
    trainers_matching(&root.display().to_string())
}

fn sigkill(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
    }
}

async fn reference(tmp: &Path) -> HashMap<u32, Vec<pb::MetricPoint>> {
    let _c = coordinator(&tmp.join("ref-coord"));
    let port = _c.port;
    let _w = worker_with(port, &tmp.join("ref-worker"), "ref", &["--slots", "cpu"]);
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &chaos_spec("chaos")).await;
    wait_for(&mut users, "chaos", 300, "the uninterrupted sweep", all_succeeded).await;
    curves(&mut users, "chaos").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_downtime_alone_charges_no_restart() {
    let _turn = SERIAL.lock().await;
    let tmp = scratch();
    let mut rng = Rng(seed());
    let data = tmp.path().join("coord");
    let first = coordinator(&data);
    let port = first.port;
    let mut c = Some(first);
    let _w = worker_with(port, &tmp.path().join("w"), "w", &["--slots", "cpu"]);
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &chaos_spec("down")).await;
    wait_for(&mut users, "down", 120, "the jobs to start", |js| js.iter().any(|j| j.step > 0)).await;
    let mut downtimes = Vec::new();
    for _ in 0..kills_per_kind() {
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
        drop(c.take()); // SIGKILL
        let down = Duration::from_millis(rng.below(3 * TTL_MS));
        tokio::time::sleep(down).await;
        downtimes.push(down.as_millis());
        c = Some(coordinator_on(&data, port));
    }
    let js = wait_for(&mut users, "down", 300, "the sweep to finish", all_succeeded).await;
    let attempts: u32 = js.iter().map(|j| j.attempt).sum();
    for j in &js {
        assert_eq!(
            j.restarts, 0,
            "job {} was charged a restart for coordinator downtime: {:?}",
            j.id, j.failure_message
        );
        assert_whole_curve(&mut users, j).await;
    }
    eprintln!(
        "chaos: {} coordinator kills, downtime {downtimes:?} ms (lease {TTL_MS} ms): no restart charged, {attempts} attempts for {} jobs",
        downtimes.len(),
        js.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_lose_nothing_and_change_no_point() {
    let _turn = SERIAL.lock().await;
    let tmp = scratch();
    let want = reference(tmp.path()).await;
    let mut rng = Rng(seed() ^ 0x5eed);
    let data = tmp.path().join("coord");
    let wdir = tmp.path().join("w");
    let first = coordinator(&data);
    let port = first.port;
    let mut c = Some(first);
    let mut w = Some(worker_with(port, &wdir, "w", &["--slots", "cpu"]));
    let mut users = connect(port).await;
    register_markov(&mut users).await;
    submit(&mut users, &chaos_spec("chaos")).await;
    wait_for(&mut users, "chaos", 120, "the jobs to start", |js| js.iter().any(|j| j.step > 0)).await;
    let n = kills_per_kind();
    let mut plan: Vec<u8> = (0..n).flat_map(|_| [0u8, 1, 2]).collect();
    // Shuffle the kinds (Fisher-Yates) so faults of every kind interleave.
    for i in (1..plan.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        plan.swap(i, j);
    }
    let (mut trainer_kills, mut worker_kills, mut coordinator_kills) = (0, 0, 0);
    let started = Instant::now();
    for kind in plan {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1200))).await;
        let js = jobs(&mut users, "chaos").await;
        if !js.is_empty() && all_succeeded(&js) {
            break;
        }
        match kind {
            0 => {
                // Between attempts no trainer runs: wait for one (a few seconds at most).
                for _ in 0..50 {
                    let pids = trainers_under(&wdir);
                    if let Some(&pid) = pids.get(rng.below(pids.len() as u64) as usize) {
                        sigkill(pid);
                        trainer_kills += 1;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            1 => {
                drop(w.take());
                tokio::time::sleep(Duration::from_millis(rng.below(TTL_MS))).await;
                w = Some(worker_with(port, &wdir, "w", &["--slots", "cpu"]));
                worker_kills += 1;
            }
            _ => {
                drop(c.take());
                tokio::time::sleep(Duration::from_millis(rng.below(3 * TTL_MS))).await;
                c = Some(coordinator_on(&data, port));
                coordinator_kills += 1;
            }
        }
    }
    wait_for(&mut users, "chaos", 600, "the sweep to finish after the faults", all_succeeded).await;
    let got = curves(&mut users, "chaos").await;
    let mut points = 0;
    for (k, ref_pts) in &want {
        let pts = got.get(k).expect("the same jobs");
        assert_eq!(pts.len(), ref_pts.len(), "{k:?}: steps 1..S once each");
        for (a, b) in ref_pts.iter().zip(pts) {
            assert_eq!(key(a), key(b), "{k:?} step {}: the point differs from the uninterrupted run's", a.step);
        }
        points += pts.len();
    }
    let js = jobs(&mut users, "chaos").await;
    let attempts: u32 = js.iter().map(|j| j.attempt).sum();
    let branches = js.iter().filter(|j| j.branch.is_some()).count();
    assert_eq!(branches, 10, "4 trunks × 2 cooldowns + 2 seeds × one 2× batch window");
    // Retention deleted checkpoints during the run; each job now keeps its final one alone.
    let mut deleted = 0;
    for j in &js {
        let l = users.list_checkpoints(pb::ListCheckpointsRequest { job_id: j.id }).await.expect("list").into_inner();
        let kept: Vec<Vec<String>> = l.checkpoints.iter().map(|c| c.kept.clone()).collect();
        assert_eq!(kept, vec![vec!["final".to_string()]], "job {} keeps its final checkpoint only", j.id);
        deleted += l.deleted;
    }
    assert!(deleted > 0, "retention deleted nothing");
    eprintln!(
        "chaos: {trainer_kills} trainer, {worker_kills} worker, {coordinator_kills} coordinator kills in {:.0} s; \
         {} jobs ({branches} branches), {points} points equal to the uninterrupted run bit for bit; {attempts} attempts in all; \
         retention deleted {deleted} checkpoints meanwhile",
        started.elapsed().as_secs_f64(),
        want.len()
    );
}
