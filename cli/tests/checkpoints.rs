//! `ladder checkpoints JOB` through the real binary: what a job keeps under its sweep's retention
//! policy, each with why, and how many the policy deleted.
use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::pb;
use ladder_testkit::server::*;

mod common;
use common::{ladder, text};

/// A server on a store in `dir` (checkpoint files beside it) with a one-job sweep, and that job
/// leased by worker "w": the server, the worker's id and the assignment.
async fn one_job_leased(dir: &std::path::Path) -> (Server, String, pb::Assignment) {
    let mut s = start(Store::open(&dir.join("ladder.redb")).expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    (s, w, a)
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_lists_what_a_job_keeps_and_why() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut s, w, a) = one_job_leased(tmp.path()).await;
    for step in 1..=3u64 {
        s.workers.report_events(report(&w, &a, vec![point(step, 2.0)])).await.expect("report");
        upload_checkpoint(&mut s.workers, &w, &a, step, &vec![1u8; 2048]).await.expect("upload");
    }
    let addr = format!("http://{}", s.addr());
    let job = a.job_id.to_string();
    let o = ladder(&["--coordinator", &addr, "checkpoints", &job]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with(char::is_numeric)).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[0].starts_with("2 ") && rows[1].starts_with("3 ") && rows[0].contains("2.0 KiB"), "{out}");
    assert!(rows.iter().all(|r| r.ends_with("newest 2")), "{out}");
    assert!(out.contains("1 deleted"), "{out}");
    let o = ladder(&["--coordinator", &addr, "--output", "json", "checkpoints", &job]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["deleted"], 1);
    assert_eq!(v["checkpoints"][1]["kept"], serde_json::json!(["newest 2"]));
    assert_eq!(v["policy"]["keep_latest"], 2);
    let o = ladder(&["--coordinator", &addr, "checkpoints", "999"]).await;
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_checkpoint_is_fetched_checked_and_unpacked_into_a_new_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut s, w, a) = one_job_leased(tmp.path()).await;
    // Two checkpoints packed as a worker packs them: a folder of files in one tar.
    for k in 1..=4 {
        s.workers.report_events(report(&w, &a, vec![point(k, 2.0)])).await.expect("report");
    }
    for step in [2u64, 4] {
        let dir = tmp.path().join(format!("ck{step}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("model.safetensors"), vec![step as u8; 5000]).expect("write");
        std::fs::write(dir.join("state.json"), format!("{{\"step\":{step}}}")).expect("write");
        let tar = tmp.path().join(format!("ck{step}.tar"));
        ladder_worker::archive::pack(&dir, &tar).expect("pack");
        let blob = std::fs::read(&tar).expect("read");
        upload_checkpoint(&mut s.workers, &w, &a, step, &blob).await.expect("upload");
    }
    let addr = format!("http://{}", s.addr());
    let job = a.job_id.to_string();
    let out = tmp.path().join("fetched");
    let o =
        ladder(&["--coordinator", &addr, "checkpoints", &job, "--fetch", "2", "--out", out.to_str().expect("utf8")])
            .await;
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(stdout.contains(&format!("job {job}, step 2: 2 files")), "{stdout}");
    assert_eq!(std::fs::read(out.join("model.safetensors")).expect("model"), vec![2u8; 5000]);
    assert_eq!(std::fs::read_dir(&out).expect("ls").count(), 2, "nothing but the checkpoint's files is left");

    // Into a folder that is not empty: refused, and the folder is untouched.
    let o =
        ladder(&["--coordinator", &addr, "checkpoints", &job, "--fetch", "4", "--out", out.to_str().expect("utf8")])
            .await;
    let (_, err) = text(&o);
    assert_ne!(o.status.code(), Some(0));
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read(out.join("model.safetensors")).expect("model"), vec![2u8; 5000]);

    // Step 0 is the newest kept.
    let newest = tmp.path().join("newest");
    let o =
        ladder(&["--coordinator", &addr, "checkpoints", &job, "--fetch", "0", "--out", newest.to_str().expect("utf8")])
            .await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(std::fs::read_to_string(newest.join("state.json")).expect("state"), "{\"step\":4}");
    // A step the job does not keep names itself.
    let gone = tmp.path().join("gone");
    let o =
        ladder(&["--coordinator", &addr, "checkpoints", &job, "--fetch", "3", "--out", gone.to_str().expect("utf8")])
            .await;
    assert_ne!(o.status.code(), Some(0));
    assert!(text(&o).1.contains('3'), "{:?}", text(&o));
    s.shutdown().await;
}
