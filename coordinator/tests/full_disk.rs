//! A full disk never stops the coordinator. Its store lives on a small tmpfs that a test fills
//! mid-sweep: uploads and points are refused with a clear RESOURCE_EXHAUSTED, reads and
//! heartbeats go on, and once space is freed the sweep finishes. With the guard off, a commit
//! that fails on the full disk is survived too: the store reopens its file once there is room,
//! and nothing acknowledged is lost. Needs root (for the mount): skipped with the reason where it
//! cannot run, and required under CI=true.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ladder_coordinator::{Config, Store};
use ladder_proto::pb;
use ladder_testkit::server::*;
use tonic::Code;

/// A tmpfs of `mib` MiB mounted at a fresh folder, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Fills the disk with a file until no byte more fits; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0xabu8; 1 << 16];
        while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
        while f.write_all(&block[..512]).and_then(|()| f.sync_data()).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// A coordinator whose store is on `disk`, with "tiny", a one-job sweep of 20 steps and its job
/// leased by worker "w".
async fn on(disk: &Tmpfs, min_free_bytes: u64) -> (Server, String, pb::Assignment) {
    let cfg = Config {
        lease_ttl: Duration::from_secs(30),
        max_wait: Duration::from_secs(2),
        data_dir: Some(disk.path().to_path_buf()),
        min_free_bytes,
        ..Config::default()
    };
    let mut s = start_with(Store::open(&disk.path().join("ladder.redb")).expect("store"), cfg).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace("steps = 5", "steps = 20");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    (s, w, a)
}

fn pts(from: u64, to: u64) -> Vec<pb::AttemptEvent> {
    (from..=to).map(|k| point(k, 3.0 / k as f64)).collect()
}

async fn job(s: &mut Server, id: u64) -> pb::Job {
    s.users.get_job(pb::GetJobRequest { job_id: id }).await.expect("job").into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_uploads_and_points_keeps_serving_and_the_sweep_finishes_once_freed() {
    let Some(disk) = ladder_testkit::gate("full_disk", Tmpfs::mount(96)) else { return };
    let (mut s, w, a) = on(&disk, 16 << 20).await;
    s.workers.report_events(report(&w, &a, pts(1, 5))).await.expect("report");
    upload_checkpoint(&mut s.workers, &w, &a, 5, &vec![5u8; 1 << 20]).await.expect("upload with room");
    let filler = disk.fill();
    // Refused, each saying why and what to do.
    let e = upload_checkpoint(&mut s.workers, &w, &a, 5, &vec![6u8; 1 << 20]).await.expect_err("no room");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("free some space"), "{}", e.message());
    let e = s.workers.report_events(report(&w, &a, pts(6, 8))).await.expect_err("points wait");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(
        e.message().contains("reporting points waits") && e.message().contains("free some space"),
        "{}",
        e.message()
    );
    // Reads and heartbeats go on.
    assert_eq!(job(&mut s, a.job_id).await.step, 5);
    let curve = s.users.get_curve(pb::GetCurveRequest { job_id: a.job_id, ..Default::default() }).await.expect("curve");
    assert_eq!(curve.into_inner().points.len(), 5);
    assert_eq!(download_checkpoint(&mut s.workers, a.job_id, 5).await.expect("download"), vec![5u8; 1 << 20]);
    let beat = pb::HeartbeatRequest {
        worker_id: w.clone(),
        running: vec![pb::AttemptRef { job_id: a.job_id, attempt: a.attempt }],
    };
    assert!(s.workers.heartbeat(beat).await.expect("heartbeat").into_inner().stop.is_empty(), "the attempt goes on");
    // Space is freed: the sweep goes on and finishes, with every point once.
    std::fs::remove_file(filler).expect("free");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.workers.report_events(report(&w, &a, pts(6, 20))).await.expect("report once freed");
    upload_checkpoint(&mut s.workers, &w, &a, 20, &vec![7u8; 1 << 20]).await.expect("upload once freed");
    s.workers.report_events(report(&w, &a, vec![finished(20)])).await.expect("finish");
    let j = job(&mut s, a.job_id).await;
    assert_eq!((j.state, j.step), (pb::JobState::Succeeded as i32, 20), "{}", j.failure_message);
    assert!(!s.task.is_finished(), "the coordinator never stopped");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_that_fails_on_a_full_disk_is_survived_and_nothing_acknowledged_is_lost() {
    let Some(disk) = ladder_testkit::gate("full_disk", Tmpfs::mount(64)) else { return };
    // No guard: writes run until a commit fails for want of space.
    let (mut s, w, a) = on(&disk, 0).await;
    s.workers.report_events(report(&w, &a, pts(1, 5))).await.expect("report");
    let filler = disk.fill();
    let mut failed = None;
    for round in 0..200 {
        let logs = (0..500)
            .map(|i| pb::AttemptEvent {
                kind: Some(pb::attempt_event::Kind::Log(pb::AttemptLog {
                    source: "trainer".into(),
                    text: format!("round {round} line {i} {}", "y".repeat(400)),
                    at_ms: 0,
                })),
            })
            .collect();
        if let Err(e) = s.workers.report_events(report(&w, &a, logs)).await {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("a commit failed on the full disk");
    assert!(matches!(e.code(), Code::Internal | Code::ResourceExhausted), "{e}");
    std::fs::remove_file(filler).expect("free");
    // Once the store has reopened, it serves and takes writes again; what was acknowledged is there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match s.workers.report_events(report(&w, &a, pts(6, 20))).await {
            Ok(_) => break,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "the store never came back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.workers.report_events(report(&w, &a, vec![finished(20)])).await.expect("finish");
    let curve = s.users.get_curve(pb::GetCurveRequest { job_id: a.job_id, ..Default::default() }).await.expect("curve");
    assert_eq!(curve.into_inner().points.iter().map(|p| p.step).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    assert_eq!(job(&mut s, a.job_id).await.state, pb::JobState::Succeeded as i32);
    s.shutdown().await;
}
