//! A sweep with a sealed target, and the points a fake worker reports for it: the fitted runs
//! follow a known Chinchilla law, so a test knows what the lock should predict.
use ladder_proto::pb;

/// Five fitted sizes at four D (runs of 8 to 60 steps of 64 tokens on "tiny", all its 4000
/// tokens), and a sealed target (2x48) above the largest at the largest D. The fits leave the
/// one 1-layer size (1x16) out: four deeper sizes remain.
pub const SPEC: &str = r#"name = "sealed"
dataset = "tiny"
[model]
n_ctx = 16
d_head = 8
shapes = [[1, 16]]
[train]
batch_tokens = 64
steps = 8
lr = 0.01
[resources]
device = "cpu"
max_restarts = 0

[[grid]]
shapes = [[1, 16], [2, 16], [2, 24], [2, 32], [3, 32]]
steps = 8
[[grid]]
shapes = [[1, 16], [2, 16], [2, 24], [2, 32], [3, 32]]
steps = 16
[[grid]]
shapes = [[1, 16], [2, 16], [2, 24], [2, 32], [3, 32]]
steps = 32
[[grid]]
shapes = [[1, 16], [2, 16], [2, 24], [2, 32], [3, 32]]
steps = 60
[[grid]]
shapes = [[2, 48]]
steps = 60
sealed = true
"#;

/// The sweep's truth: L = 1.5 + 100/N^0.5 + 30/D^0.4, times a deterministic ±0.4% scatter.
pub fn truth(n: f64, d: f64, job: u64) -> f64 {
    let scatter = 1.0 + 0.004 * ((job as f64 * 2.399).sin());
    (1.5 + 100.0 / n.sqrt() + 30.0 / d.powf(0.4)) * scatter
}

/// A run's points, one per step: from far above its end (so it counts as converged) down to its
/// last step's validation loss.
pub fn run(steps: u64, loss: f64) -> Vec<pb::AttemptEvent> {
    let metrics = |step: u64, train: f64, val: Option<f64>| pb::AttemptEvent {
        kind: Some(pb::attempt_event::Kind::Metrics(pb::MetricPoint {
            step,
            tokens: step * 64,
            train_loss: train,
            val_loss: val,
            ..Default::default()
        })),
    };
    (1..=steps)
        .map(|step| {
            let f = (step - 1) as f64 / (steps - 1) as f64;
            let val = match step {
                1 => Some(19.0),
                s if s == steps => Some(loss),
                _ => None,
            };
            metrics(step, 20.0 + f * (loss * 1.02 - 20.0), val)
        })
        .collect()
}

/// Leases and ends every fitted run of [`SPEC`] as worker `w`, each at its [`truth`].
pub async fn end_fitted_runs(s: &mut crate::server::Server, w: &str, jobs: &[pb::Job]) {
    while let Some(a) = crate::server::acquire(&mut s.workers, w).await {
        let j = jobs.iter().find(|j| j.id == a.job_id).expect("a listed job");
        assert!(!j.sealed, "the target is leased once, first");
        let steps = j.total_steps;
        let mut events = run(steps, truth(j.n_params as f64, (steps * 64).min(4000) as f64, j.id));
        events.push(crate::server::finished(steps));
        s.workers.report_events(crate::server::report(w, &a, events)).await.expect("report");
    }
}
