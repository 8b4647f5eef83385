//! Must show 2 of the B_simple issue: the streamed estimate of a real training run agrees with
//! the ground truth, tr(Σ)/|G|² measured at the frozen checkpoint from 512 independent
//! micro-batch gradients ([`ladder_trainer::gns_probe`]), within 20%.
mod common;

use ladder_trainer::events::Event;
use ladder_trainer::gns_probe::probe;
use ladder_trainer::{resolve_job, run};

#[test]
fn streamed_b_simple_matches_the_measurement_at_a_frozen_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    common::markov_dataset(&data, 64, 200_000, 20_000);
    let steps = 400;
    // Constant learning rate after warmup: B_simple is then stationary over the averaging
    // window, so the windowed streamed estimate and the point measurement see one quantity.
    let text = common::tiny_job(&data, &dir.path().join("ck"), 64, steps, "")
        .replace(
            "batch_tokens = 1024\nmicro_batch = 8",
            "batch_tokens = 2048\nmicro_batch = 4\nschedule = \"constant\"",
        )
        .replace("lr = 0.01", "lr = 0.003");
    let cfg = common::parse(&text); // checkpoint.every = 0: only the final step is saved
    let job = resolve_job(&cfg).expect("job");
    assert_eq!(job.accumulation(), 16, "16 micro-batches of 128 tokens per step");
    let mut streamed = None;
    run(&job, None, &mut |e| {
        if let Event::Metrics(m) = e
            && m.step == steps
        {
            streamed = m.b_simple;
        }
    })
    .expect("training");
    let streamed = streamed.expect("B_simple streamed at the last step");
    let ck = ladder_trainer::checkpoint::latest(&cfg.checkpoint.dir).expect("final checkpoint");
    let truth = probe(&job, &ck, 512, 7).expect("probe");
    assert_eq!(truth.step, steps);
    let rel = (streamed - truth.b_simple).abs() / truth.b_simple;
    eprintln!(
        "streamed B_simple {streamed:.1}, measured {:.1} ± {:.1} (tr Σ {:.3}, |G|² {:.3e}), relative difference {rel:.3}",
        truth.b_simple, truth.b_simple_se, truth.tr_sigma, truth.g_sq
    );
    assert!(truth.b_simple_se < 0.1 * truth.b_simple, "the measurement itself must be precise: {truth:?}");
    assert!(rel < 0.20, "streamed {streamed} vs measured {}", truth.b_simple);
}
