//! Early stopping (`stop.patience`): a run on a few thousand tokens repeats them, overfits, and
//! stops `patience` evaluations after its best validation loss, with that best loss kept in the
//! checkpoint so that a resumed run counts on from where it was.
mod common;

use ladder_trainer::events::{Event, StopReason};
use ladder_trainer::{Outcome, resolve_job, run};

#[test]
fn an_overfitting_run_stops_patience_evaluations_after_its_best() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    common::markov_dataset(&data, 64, 100_000, 20_000);
    let steps = 2000;
    // 2,000 unique tokens, seen hundreds of times over by a model that can memorise them.
    let extra = "[eval]\nevery = 20\nwindows = 32\n";
    let text = common::tiny_job(&data, &dir.path().join("ck"), 64, steps, extra)
        .replace("[data]\ndir", "[data]\nmax_tokens = 2000\ndir")
        .replace("d_model = 32", "d_model = 64")
        .replace("[stop]\n", "[stop]\npatience = 3\n");
    let job = resolve_job(&common::parse(&text)).expect("job");
    let mut vals = Vec::new();
    let outcome = run(&job, None, &mut |e| {
        if let Event::Metrics(m) = e
            && let Some(v) = m.val_loss
        {
            vals.push((m.step, v));
        }
    })
    .expect("training");
    let Outcome::Finished { step, reason, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(reason, StopReason::EarlyStopped);
    assert!(step < steps, "stopped at {step}");
    let (best_at, best) = vals.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1)).expect("evaluations");
    assert_eq!(step, best_at + 3 * 20, "3 evaluations after the best ({best} at step {best_at})");
    assert!(vals.iter().filter(|(s, _)| *s > best_at).all(|(_, v)| *v >= best), "{vals:?}");
    let ck = ladder_trainer::checkpoint::latest(&job.config.checkpoint.dir).expect("checkpoint");
    let state = ladder_trainer::checkpoint::load(&ck).expect("load").state;
    assert_eq!((state.step, state.best_val, state.evals_since_best), (step, Some(best), 3));
}
