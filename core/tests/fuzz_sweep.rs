//! Fuzzing the sweep planner (proptest): arbitrary text, and specs built from arbitrary numbers
//! and lists, never panic and are answered within a second. `PROPTEST_CASES` sets the count
//! (CI runs the default below; a long run sets it high).
use std::time::{Duration, Instant};

use ladder_core::sweep::{DatasetFacts, plan};
use proptest::prelude::*;

fn facts(_: &str) -> Option<DatasetFacts> {
    Some(DatasetFacts { vocab: 256, train_tokens: 1_000_000 })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn answered_in_time(spec: &str) {
    let t = Instant::now();
    let _ = plan(spec, "fuzz", facts);
    assert!(t.elapsed() < Duration::from_secs(1), "planning took {:?} for {spec:?}", t.elapsed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(spec in "\\PC{0,400}") {
        answered_in_time(&spec);
    }

    #[test]
    fn arbitrary_numbers_never_panic(
        n_ctx in any::<i64>(),
        d_head in any::<i64>(),
        shapes in prop::collection::vec((any::<i64>(), any::<i64>()), 0..6),
        batch in prop::collection::vec(any::<i64>(), 0..5),
        d in prop::collection::vec(prop_oneof![any::<i64>().prop_map(|v| v.to_string()), Just("\"all\"".to_string()), any::<f64>().prop_map(|f| format!("{f:e}"))], 0..4),
        seeds in prop::collection::vec(any::<u64>(), 0..4),
        steps in any::<i64>(),
        fuse in any::<i64>(),
        grids in 0usize..4,
    ) {
        let shapes = shapes.iter().map(|(l, w)| format!("[{l}, {w}]")).collect::<Vec<_>>().join(", ");
        let batch = batch.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let d = d.join(", ");
        let seeds = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let mut spec = format!(
            "name = \"f\"\ndataset = \"d\"\nseeds = [{seeds}]\n[model]\nn_ctx = {n_ctx}\nd_head = {d_head}\nshapes = [{shapes}]\n[train]\nbatch_tokens = [{batch}]\ndataset_tokens = [{d}]\nsteps = {steps}\nlr = 1e-3\n[resources]\nfuse = {fuse}\n"
        );
        for _ in 0..grids {
            spec.push_str(&format!("[[grid]]\nshapes = [{shapes}]\nbatch_tokens = [{batch}]\n"));
        }
        answered_in_time(&spec);
    }
}
