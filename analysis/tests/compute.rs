//! The compute a sweep trained against what its measurements would cost from scratch, like for
//! like: a constant-LR trunk is trained but measures nothing (its cooldowns do), so it counts in
//! what was trained and not in the from-scratch cost.
use ladder_analysis::inputs::{Inputs, JobCurve};
use ladder_core::JobState;
use ladder_core::accounting::Accounting;
use ladder_core::branch::{BranchKind, BranchOf};
use ladder_core::events::MetricPoint;
use ladder_core::shape::Shape;
use ladder_core::status::{JobStatus, Progress, RecordedPoint};

const B: u64 = 1024;

fn job(id: u64, branch: Option<BranchOf>) -> JobStatus {
    let shape = Shape { n_layer: 2, d_model: 64, n_heads: 2, d_ff: 256, n_ctx: 64, vocab: 256 };
    JobStatus {
        id,
        sweep_id: 1,
        index: id as u32,
        state: JobState::Succeeded,
        attempt: 1,
        restarts: 0,
        max_restarts: 3,
        shape,
        accounting: Accounting::of(&shape),
        batch_tokens: B,
        dataset_tokens: None,
        seed: 0,
        lr: 1e-3,
        total_steps: 100,
        progress: Progress::default(),
        worker_id: None,
        failure: None,
        checkpoint_step: 0,
        resumed_from_step: 0,
        waiting: None,
        log_tail: Vec::new(),
        sealed: false,
        branch,
        config: None,
    }
}

/// Steps `from..=to`, 6·N FLOPs a token from the root, the loss falling from 5.
fn points(n: f64, from: u64, to: u64) -> Vec<RecordedPoint> {
    (from..=to)
        .map(|step| {
            let tokens = step * B;
            let loss = 5.0 / (1.0 + step as f64 / 10.0);
            RecordedPoint {
                point: MetricPoint {
                    step,
                    tokens,
                    flops: 6.0 * n * tokens as f64,
                    flops_exact: 6.0 * n * tokens as f64,
                    train_loss: loss,
                    val_loss: Some(loss),
                    lr: 1e-3,
                    grad_norm: 1.0,
                    gns_small_sq: 0.0,
                    gns_big_sq: 0.0,
                    b_small: 0,
                    b_big: 0,
                    b_simple: None,
                    tokens_per_s: 1.0,
                },
                attempt: 1,
            }
        })
        .collect()
}

#[test]
fn the_from_scratch_cost_counts_the_measurements_and_not_their_trunk() {
    let trunk = job(1, None);
    let n = trunk.accounting.n as f64;
    let cooldown = |id, at: u64, to: u64| {
        let b = BranchOf { parent: 1, step: at, tokens: at * B, kind: BranchKind::Cooldown { to_tokens: to * B } };
        (job(id, Some(b)), points(n, at + 1, to))
    };
    // A trunk of 100 steps with cooldowns from steps 40 and 80, each 10 steps long.
    let (c1, p1) = cooldown(2, 40, 50);
    let (c2, p2) = cooldown(3, 80, 90);
    let pt = points(n, 1, 100);
    let jobs =
        [JobCurve { job: &trunk, points: &pt }, JobCurve { job: &c1, points: &p1 }, JobCurve { job: &c2, points: &p2 }];
    let inputs = Inputs::from_jobs("test".into(), &jobs, None);
    let c = inputs.compute;
    let per_step = 6.0 * n * B as f64;
    // Trained: the trunk's 100 steps and the cooldowns' own 10 each.
    assert!((c.trained / per_step - 120.0).abs() < 1e-9, "{c:?}");
    // The two measurements from scratch: 50 and 90 steps; the trunk measures nothing.
    assert_eq!(c.measurements, 2);
    assert!((c.from_scratch / per_step - 140.0).abs() < 1e-9, "{c:?}");
    assert!((c.ratio() - 120.0 / 140.0).abs() < 1e-12);
}
