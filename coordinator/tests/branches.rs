//! Issue 20 at the coordinator: a branch waits (`pending`) until its parent stores the checkpoint
//! it forks from, then joins the queue, and its assignment names that checkpoint by hash; its
//! curve starts after the branch point. A parent that fails or is cancelled takes its pending
//! branches with it, each with a reason that names the parent.
use std::time::Duration;

use ladder_coordinator::Store;
use ladder_proto::pb;
use ladder_testkit::server::*;

/// One trunk of 10 steps (64 tokens each), a cooldown to 512 tokens (forks at step 6) and a
/// batch window at 256 tokens (step 4), k = 1 and 2.
const SPEC_BR: &str = r#"name = "br"
dataset = "tiny"
[model]
n_ctx = 16
d_head = 8
shapes = [[1, 16]]
[train]
batch_tokens = 64
steps = 10
lr = 0.01
schedule = "constant"
[resources]
device = "cpu"
max_restarts = 0

[[branch]]
from = "main"
cooldown = { to_tokens = [512], fraction = 0.25 }

[[branch]]
from = "main"
batch = { at_tokens = [256], multipliers = [1, 2], window_tokens = 128, min_steps = 1 }
"#;

async fn jobs(s: &mut Server) -> Vec<pb::Job> {
    s.users.list_jobs(pb::ListJobsRequest { sweep: "br".into() }).await.expect("jobs").into_inner().jobs
}

async fn upload(s: &mut Server, w: &str, a: &pb::Assignment, step: u64, blob: &[u8]) -> pb::CheckpointInfo {
    upload_checkpoint(&mut s.workers, w, a, step, blob).await.expect("upload")
}

fn state(js: &[pb::Job], id: u64) -> pb::JobState {
    pb::JobState::try_from(js.iter().find(|j| j.id == id).expect("job").state).expect("state")
}

#[tokio::test]
async fn a_branch_waits_for_its_parents_checkpoint_and_starts_from_it() {
    let (mut s, w) = Server::with_sweep(Duration::from_secs(30), Some(SPEC_BR)).await;
    let js = jobs(&mut s).await;
    assert_eq!(js.len(), 4);
    let trunk = js.iter().find(|j| j.branch.is_none()).expect("the trunk").id;
    let branches: Vec<&pb::Job> = js.iter().filter(|j| j.branch.is_some()).collect();
    for b in &branches {
        assert_eq!(b.state, pb::JobState::Pending as i32);
        let br = b.branch.as_ref().expect("branch");
        assert_eq!(br.parent, trunk);
        assert!(b.waiting.contains(&format!("job {trunk}'s checkpoint at step {}", br.step)), "{}", b.waiting);
    }
    let sweep = s.users.get_sweep(pb::GetSweepRequest { sweep: "br".into() }).await.expect("sweep").into_inner();
    assert_eq!((sweep.jobs_queued, sweep.jobs_pending), (1, 3));
    // Only the trunk can be leased.
    let a = acquire(&mut s.workers, &w).await.expect("the trunk");
    assert_eq!(a.job_id, trunk);
    assert!(acquire(&mut s.workers, &w).await.is_none(), "the branches wait");
    let pts = (1..=4).map(|k| point(k, 3.0 - 0.1 * k as f64)).collect();
    s.workers.report_events(report(&w, &a, pts)).await.expect("report");
    let ck = upload(&mut s, &w, &a, 4, b"weights at step 4").await;
    // The batch window's two branches fork at step 4: they are queued now; the cooldown is not.
    let js = jobs(&mut s).await;
    let at4: Vec<u64> =
        branches.iter().filter(|b| b.branch.as_ref().is_some_and(|x| x.step == 4)).map(|b| b.id).collect();
    assert_eq!(at4.len(), 2);
    for id in &at4 {
        assert_eq!(state(&js, *id), pb::JobState::Queued);
    }
    let cool = branches.iter().find(|b| b.branch.as_ref().is_some_and(|x| x.kind == "cooldown")).expect("cooldown").id;
    assert_eq!(state(&js, cool), pb::JobState::Pending);
    // Its assignment names the parent's checkpoint by hash; its curve starts at step 5.
    let w2 = register_worker(&mut s.workers, "w2").await;
    let b = acquire(&mut s.workers, &w2).await.expect("a branch");
    assert!(at4.contains(&b.job_id));
    let from = b.branch_from.as_ref().expect("a branch source");
    assert_eq!((from.job_id, from.step, from.sha256.as_str()), (trunk, 4, ck.sha256.as_str()));
    assert_eq!(b.resume_step, 0);
    let e = s.workers.report_events(report(&w2, &b, vec![point(5, 2.5)])).await.expect("report").into_inner();
    assert_eq!(e.stored, 1);
    let checkpoint = upload(&mut s, &w2, &b, 5, b"branch weights").await;
    assert_eq!(checkpoint.step, 5, "a branch's checkpoint right after its branch point: its curve is whole");
    s.shutdown().await;
}

#[tokio::test]
async fn a_failed_parent_takes_its_pending_branches_with_it_naming_itself() {
    let (mut s, w) = Server::with_sweep(Duration::from_secs(30), Some(SPEC_BR)).await;
    let a = acquire(&mut s.workers, &w).await.expect("the trunk");
    let failed = pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Failed(pb::AttemptFailed {
            kind: pb::FailureKind::Diverged as i32,
            message: "loss is NaN".into(),
            shared_device: false,
        })),
    };
    s.workers.report_events(report(&w, &a, vec![point(1, 3.0), failed])).await.expect("report");
    let js = jobs(&mut s).await;
    for j in js.iter().filter(|j| j.branch.is_some()) {
        assert_eq!(j.state, pb::JobState::Failed as i32, "job {}", j.id);
        assert_eq!(j.failure, pb::FailureKind::Parent as i32);
        assert!(j.failure_message.contains(&format!("parent job {} failed", a.job_id)), "{}", j.failure_message);
    }
    let sweep = s.users.get_sweep(pb::GetSweepRequest { sweep: "br".into() }).await.expect("sweep").into_inner();
    assert_eq!((sweep.state, sweep.jobs_failed, sweep.jobs_pending), (pb::SweepState::Done as i32, 4, 0));
    s.shutdown().await;
}

#[tokio::test]
async fn cancelling_the_sweep_cancels_pending_branches() {
    let (mut s, _w) = Server::with_sweep(Duration::from_secs(30), Some(SPEC_BR)).await;
    s.users.cancel_sweep(pb::CancelSweepRequest { sweep: "br".into() }).await.expect("cancel");
    let js = jobs(&mut s).await;
    assert!(js.iter().all(|j| j.state == pb::JobState::Cancelled as i32), "{js:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_parent_that_ends_before_the_branch_point_fails_the_branch() {
    let mut s = start(Store::in_memory().expect("store"), Duration::from_secs(30)).await;
    register_dataset(&mut s.users).await;
    s.users
        .submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC_BR.into(), ..Default::default() })
        .await
        .expect("submit");
    let w = register_worker(&mut s.workers, "w").await;
    let a = acquire(&mut s.workers, &w).await.expect("the trunk");
    // Early-stopped at step 3, before every branch point.
    let pts: Vec<_> = (1..=3).map(|k| point(k, 3.0)).collect();
    let fin = pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Finished(pb::AttemptFinished { step: 3, reason: "early_stopped".into() })),
    };
    s.workers.report_events(report(&w, &a, pts.into_iter().chain([fin]).collect())).await.expect("report");
    let js = jobs(&mut s).await;
    for j in js.iter().filter(|j| j.branch.is_some()) {
        assert_eq!(j.state, pb::JobState::Failed as i32);
        assert!(j.failure_message.contains("ended at step 3, before step"), "{}", j.failure_message);
    }
    s.shutdown().await;
}
