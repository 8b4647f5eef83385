//! CUDA: bf16 autocast training learns, and agrees with the CPU run at step 1.
//! Skips with a printed reason where no GPU is present.
mod common;

use ladder_trainer::{Event, resolve_job, run};

fn curve(text: &str) -> (Vec<f64>, Vec<f64>, String) {
    let job = resolve_job(&common::parse(text)).expect("job");
    let (mut train, mut val, mut device) = (Vec::new(), Vec::new(), String::new());
    run(&job, None, &mut |e| match e {
        Event::Started(info) => device = info.device.clone(),
        Event::Metrics(m) => {
            train.push(m.train_loss);
            val.extend(m.val_loss);
        }
        _ => {}
    })
    .expect("runs");
    (train, val, device)
}

#[test]
fn cuda_bf16_training_learns_and_matches_cpu_at_step_one() {
    if !tch::Cuda::is_available() {
        eprintln!("skipping cuda_bf16_training_learns_and_matches_cpu_at_step_one: no CUDA device on this machine");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("markov");
    let chain = common::markov_dataset(&data, 12, 100_000, 8_192);
    let text = common::tiny_job(&data, &tmp.path().join("ckpt"), 12, 200, "[eval]\nevery = 100\nwindows = 128\n");
    let (gpu_train, gpu_val, device) = curve(&text.replace("device = \"cpu\"", "device = \"cuda\""));
    assert!(device.contains("Cuda"), "ran on {device}");
    let (cpu_train, _, _) = curve(&text.replace("steps = 200", "steps = 1"));
    // Same init and batch: bf16 matmuls move the first loss by far less than 0.02 nats.
    assert!((gpu_train[0] - cpu_train[0]).abs() < 0.02, "cuda {} vs cpu {}", gpu_train[0], cpu_train[0]);
    let last = *gpu_val.last().expect("evaluated");
    assert!(last - chain.entropy_rate() < 0.1, "cuda val {last} vs entropy rate {}", chain.entropy_rate());
}
