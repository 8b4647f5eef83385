//! Checkpoint retention through the RPCs, on a store on disk: a job keeps what its sweep's policy
//! says (and says why), the rest leave the disk, a branch point stays until its branches have
//! ended and no re-upload replaces it once one has forked, and a resume from an older checkpoint
//! drops the trajectory it abandons (its points and its checkpoints).
use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::pb;
use ladder_testkit::server::*;

/// The checkpoint files of job `job` in the store folder `dir`.
fn files(dir: &std::path::Path, job: u64) -> Vec<u64> {
    let d = dir.join("checkpoints").join(job.to_string());
    let mut sizes: Vec<u64> = std::fs::read_dir(d)
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).collect())
        .unwrap_or_default();
    sizes.sort_unstable();
    sizes
}

async fn list(s: &mut Server, job: u64) -> pb::ListCheckpointsResponse {
    s.users.list_checkpoints(pb::ListCheckpointsRequest { job_id: job }).await.expect("list").into_inner()
}

fn steps(l: &pb::ListCheckpointsResponse) -> Vec<(u64, Vec<String>)> {
    l.checkpoints.iter().map(|c| (c.step, c.kept.clone())).collect()
}

/// A server on a store in `dir` with "tiny", `spec` submitted and a worker: (server, worker).
async fn on_disk(dir: &std::path::Path, spec: &str) -> (Server, String) {
    let mut s = start(Store::open(&dir.join("ladder.redb")).expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: spec.into(), ..Default::default() })
        .await
        .expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    (s, w)
}

/// A point of `step` with a validation loss.
fn val_point(step: u64, val: f64) -> pb::AttemptEvent {
    let mut p = point(step, val + 0.1);
    if let Some(pb::attempt_event::Kind::Metrics(m)) = p.kind.as_mut() {
        m.val_loss = Some(val);
    }
    p
}

#[tokio::test]
async fn a_job_keeps_its_newest_two_and_the_rest_leave_the_disk_then_its_final_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace("steps = 5", "steps = 6");
    let (mut s, w) = on_disk(tmp.path(), &spec).await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    for step in 1..=5u64 {
        s.workers.report_events(report(&w, &a, vec![point(step, 3.0 / step as f64)])).await.expect("report");
        upload_checkpoint(&mut s.workers, &w, &a, step, &vec![step as u8; 1000 * step as usize]).await.expect("upload");
    }
    let l = list(&mut s, a.job_id).await;
    let newest = vec!["newest 2".to_string()];
    assert_eq!(steps(&l), vec![(4, newest.clone()), (5, newest)]);
    assert_eq!((l.deleted, l.policy.map(|p| (p.keep_latest, p.keep_best, p.keep_final))), (3, Some((2, 0, true))));
    eventually("the deleted files gone", || async { files(tmp.path(), a.job_id) == vec![4000, 5000] }).await;
    // What is gone says so, and why.
    let e = download_checkpoint(&mut s.workers, a.job_id, 2).await.expect_err("deleted");
    assert!(e.message().contains("retention policy has deleted 3"), "{}", e.message());
    // Once it succeeds, its last checkpoint is what it keeps: the trained model.
    s.workers.report_events(report(&w, &a, vec![point(6, 0.4), finished(6)])).await.expect("finish");
    assert_eq!(steps(&list(&mut s, a.job_id).await), vec![(5, vec!["final".to_string()])]);
    eventually("only the final file left", || async { files(tmp.path(), a.job_id) == vec![5000] }).await;
    assert_eq!(download_checkpoint(&mut s.workers, a.job_id, 0).await.expect("the final one"), vec![5u8; 5000]);
    s.shutdown().await;
}

#[tokio::test]
async fn keep_best_keeps_the_lowest_validation_loss_and_a_policy_of_none_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace("steps = 5", "steps = 8")
        + "[retention]\nkeep_latest = 1\nkeep_best = 1\n";
    let (mut s, w) = on_disk(tmp.path(), &spec).await;
    let a = acquire(&mut s.workers, &w).await.expect("a job");
    // Validation loss falls to its lowest at step 3, then rises (overfitting).
    for (step, val) in [(1u64, 3.0), (2, 2.5), (3, 2.0), (4, 2.2), (5, 2.4)] {
        s.workers.report_events(report(&w, &a, vec![val_point(step, val)])).await.expect("report");
        upload_checkpoint(&mut s.workers, &w, &a, step, &[step as u8; 100]).await.expect("upload");
    }
    let l = list(&mut s, a.job_id).await;
    assert_eq!(
        steps(&l),
        vec![(3, vec!["best 1 by val loss (2.0000)".to_string()]), (5, vec!["newest 1".to_string()])]
    );
    let none = SPEC.replace("name = \"fence\"", "name = \"none\"") + "[retention]\nkeep_latest = 0\n";
    let e = s
        .users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: none.clone(), ..Default::default() })
        .await
        .expect_err("refused");
    let line = none.lines().position(|l| l == "keep_latest = 0").expect("line") + 1;
    assert!(
        e.message().contains("retention.keep_latest") && e.message().contains(&format!("line {}", line - 1)),
        "{}",
        e.message()
    );
    s.shutdown().await;
}

/// A trunk of 8 steps at a constant rate and a cooldown branch from step 2.
const SPEC_BR: &str = r#"name = "br"
dataset = "tiny"
seeds = [0]
[model]
n_ctx = 16
d_head = 8
shapes = [[1, 16]]
[train]
batch_tokens = 64
steps = 8
lr = 0.01
schedule = "constant"
[resources]
device = "cpu"
[[branch]]
from = "main"
cooldown = { to_tokens = [256], fraction = 0.5 }
"#;

#[tokio::test]
async fn a_branch_point_stays_until_its_branch_ends_and_is_never_replaced_once_forked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut s, w) = on_disk(tmp.path(), SPEC_BR).await;
    let a = acquire(&mut s.workers, &w).await.expect("the trunk");
    let branch_step = 2;
    for step in 1..=6u64 {
        s.workers.report_events(report(&w, &a, vec![point(step, 3.0 / step as f64)])).await.expect("report");
        upload_checkpoint(&mut s.workers, &w, &a, step, &[step as u8; 100]).await.expect("upload");
    }
    let l = list(&mut s, a.job_id).await;
    let kept: Vec<u64> = l.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(kept, vec![branch_step, 5, 6], "the branch point outlives newer checkpoints");
    let why = &l.checkpoints[0].kept;
    assert!(why.len() == 1 && why[0].starts_with("branch point of job "), "{why:?}");
    // The branch forks; a re-upload of its step (another trajectory's bytes) changes nothing.
    let w2 = register_worker(&mut s.workers, "w2").await;
    let b = acquire(&mut s.workers, &w2).await.expect("the branch");
    assert_eq!(b.branch_from.as_ref().map(|f| f.step), Some(branch_step));
    let again = upload_checkpoint(&mut s.workers, &w, &a, branch_step, b"other bytes").await.expect("re-upload");
    assert_eq!(again.sha256, b.branch_from.as_ref().expect("source").sha256, "the forked checkpoint stays");
    assert_eq!(download_checkpoint(&mut s.workers, a.job_id, branch_step).await.expect("dl"), vec![2u8; 100]);
    // Once the branch has ended, its branch point goes.
    let evs = (3..=4).map(|k| point(k, 1.0)).chain([finished(4)]).collect();
    s.workers.report_events(report(&w2, &b, evs)).await.expect("branch done");
    let kept: Vec<u64> = list(&mut s, a.job_id).await.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(kept, vec![5, 6]);
    eventually("the branch point's file gone", || async { files(tmp.path(), a.job_id) == vec![100, 100] }).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_resume_from_an_older_checkpoint_drops_the_abandoned_trajectory() {
    let clock = ladder_coordinator::ManualClock::at(1_000_000);
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(&tmp.path().join("ladder.redb")).expect("store");
    let mut s = start_clocked(store, Duration::from_secs(30), &clock).await;
    register_dataset(&mut s.users).await;
    let spec = SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace("steps = 5", "steps = 8");
    s.users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a1 = acquire(&mut s.workers, &w).await.expect("a job");
    let pts = (1..=6).map(|k| point(k, 9.0)).collect();
    s.workers.report_events(report(&w, &a1, pts)).await.expect("report");
    for step in [2, 4] {
        upload_checkpoint(&mut s.workers, &w, &a1, step, &[step as u8; 10]).await.expect("upload");
    }
    // Attempt 1 is lost; attempt 2 cannot load step 4 and starts from step 2.
    clock.advance(Duration::from_secs(31));
    let w2 = register_worker(&mut s.workers, "w2").await;
    let a2 = loop {
        if let Some(a) = acquire(&mut s.workers, &w2).await {
            break a;
        }
    };
    assert_eq!((a2.job_id, a2.resume_step), (a1.job_id, 4));
    let started =
        pb::AttemptEvent { kind: Some(pb::attempt_event::Kind::Started(pb::AttemptStarted { resumed_from_step: 2 })) };
    s.workers.report_events(report(&w2, &a2, vec![started])).await.expect("started");
    let job = s.users.get_job(pb::GetJobRequest { job_id: a1.job_id }).await.expect("job").into_inner();
    assert_eq!((job.checkpoint_step, job.resumed_from_step, job.step), (2, 2, 2));
    let kept: Vec<u64> = list(&mut s, a1.job_id).await.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(kept, vec![2], "step 4 is attempt 1's trajectory, which this one abandons");
    // Attempt 2 stops early (a target loss at step 5): its curve holds none of attempt 1's points
    // past step 2, and nothing past its own end.
    let evs = (3..=5).map(|k| point(k, 1.0)).chain([finished(5)]).collect();
    s.workers.report_events(report(&w2, &a2, evs)).await.expect("finish");
    let pts = s
        .users
        .get_curve(pb::GetCurveRequest { job_id: a1.job_id, after_step: 0, limit: 0 })
        .await
        .expect("curve")
        .into_inner()
        .points;
    let by: Vec<(u64, u32)> = pts.iter().map(|p| (p.step, p.attempt)).collect();
    assert_eq!(by, vec![(1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]);
    s.shutdown().await;
}
