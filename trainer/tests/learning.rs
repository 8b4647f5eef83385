//! Must show 1: on a Markov source of known entropy rate, validation loss comes within 0.1 nats.
mod common;

use ladder_trainer::{Event, Outcome, resolve_job, run};

#[test]
fn learns_a_markov_chain_to_its_entropy_rate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("markov");
    let chain = common::markov_dataset(&data, 12, 200_000, 16_384);
    let h_rate = chain.entropy_rate();
    // Every position sees at least its own token, all an order-1 chain needs: the optimum is the rate.

    let text = common::tiny_job(&data, &tmp.path().join("ckpt"), 12, 300, "[eval]\nevery = 100\nwindows = 256\n");
    let job = resolve_job(&common::parse(&text)).expect("job");
    let mut vals = Vec::new();
    let outcome = run(&job, None, &mut |e| {
        if let Event::Metrics(m) = e
            && let Some(v) = m.val_loss
        {
            vals.push(v);
        }
    })
    .expect("training runs");
    assert!(matches!(outcome, Outcome::Finished { step: 300, .. }), "{outcome:?}");
    let last = *vals.last().expect("an evaluation");
    eprintln!("entropy rate {h_rate:.4}, val losses {vals:?}");
    assert!(vals[0] > last, "loss must fall: {vals:?}");
    assert!(last - h_rate < 0.1, "val {last:.4} not within 0.1 nats of entropy rate {h_rate:.4}");
    // Below the rate by more than the validation set's sampling noise would mean a causal leak.
    assert!(last > h_rate - 0.03, "val {last:.4} below the entropy rate {h_rate:.4}: leak?");
}
