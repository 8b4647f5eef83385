//! CUDA: bf16 autocast training learns, and agrees with the CPU run at step 1.
//! Ignored by default (this project's CI has no GPU); `bench/gpu.sh tests` runs them with
//! `--ignored`, and there a missing device fails them.
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

const NEEDS_GPU: &str = "needs a CUDA device: bench/gpu.sh tests runs it with --ignored";

#[test]
#[ignore = "needs a CUDA device: bench/gpu.sh tests runs it with --ignored"]
fn cuda_bf16_training_learns_and_matches_cpu_at_step_one() {
    need_cuda();
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

/// Run on purpose (`--ignored`): a missing device is a failure, never a silent pass.
fn need_cuda() {
    assert!(tch::Cuda::is_available(), "no CUDA device on this machine; this test {NEEDS_GPU}");
}

/// Train loss, gradient norm and noise-scale sums of every step, as bit patterns, and the profile.
fn bits(text: &str) -> (Vec<[u64; 4]>, Option<ladder_trainer::events::PhaseTimes>) {
    let job = resolve_job(&common::parse(text)).expect("job");
    let (mut out, mut profile) = (Vec::new(), None);
    run(&job, None, &mut |e| match e {
        Event::Metrics(m) => {
            out.push([m.train_loss.to_bits(), m.grad_norm.to_bits(), m.gns_small_sq.to_bits(), m.gns_big_sq.to_bits()])
        }
        Event::Profile(p) => profile = Some(p.clone()),
        _ => {}
    })
    .expect("runs");
    (out, profile)
}

#[test]
#[ignore = "needs a CUDA device: bench/gpu.sh tests runs it with --ignored"]
fn captured_steps_equal_eager_steps_bit_for_bit() {
    need_cuda();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("markov");
    common::markov_dataset(&data, 12, 100_000, 8_192);
    let text = common::tiny_job(&data, &tmp.path().join("ckpt"), 12, 12, "[eval]\nevery = 100\nwindows = 16\n")
        .replace("device = \"cpu\"", "device = \"cuda\"");
    let (eager, p_eager) = bits(&text.replace("device = \"cuda\"", "device = \"cuda\"\ncuda_graphs = false"));
    let (graph, p_graph) = bits(&text);
    assert!(!p_eager.expect("profile").captured);
    assert!(p_graph.expect("profile").captured, "the step was captured");
    assert_eq!(eager.len(), 12);
    assert_eq!(eager, graph, "replayed steps compute what eager steps do");
}

#[test]
#[ignore = "needs a CUDA device: bench/gpu.sh tests runs it with --ignored"]
fn fused_adamw_on_cuda_matches_the_cpu_update() {
    need_cuda();
    use ladder_trainer::optim::{AdamW, AdamWConfig};
    use tch::{Device, Kind, Tensor};
    tch::manual_seed(0);
    let cfg = AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };
    let p0 = Tensor::randn([64, 32], (Kind::Float, Device::Cpu));
    let b0 = Tensor::randn([32], (Kind::Float, Device::Cpu));
    let grads: Vec<Vec<Tensor>> = (0..5)
        .map(|_| {
            vec![Tensor::randn([64, 32], (Kind::Float, Device::Cpu)), Tensor::randn([32], (Kind::Float, Device::Cpu))]
        })
        .collect();
    let on = |device: Device, fused: bool| -> Vec<Tensor> {
        let params = [p0.to_device(device), b0.to_device(device)];
        let mut opt =
            AdamW::new(params.iter().map(Tensor::shallow_clone).collect(), vec![true, false], cfg).expect("opt");
        if fused {
            opt.use_fused().expect("fused");
        }
        for (i, g) in grads.iter().enumerate() {
            let g: Vec<Tensor> = g.iter().map(|t| t.to_device(device)).collect();
            opt.update(&g, 1e-2 * (i + 1) as f64).expect("update");
        }
        params.iter().map(|p| p.to_device(Device::Cpu)).collect()
    };
    let cpu = on(Device::Cpu, false);
    let gpu = on(Device::Cuda(0), true);
    for (a, b) in cpu.iter().zip(&gpu) {
        let d = (a - b).abs().max().double_value(&[]);
        assert!(d < 1e-5, "fused update differs by {d}");
    }
}

#[test]
#[ignore = "needs a CUDA device: bench/gpu.sh tests runs it with --ignored"]
fn devices_report_their_memory() {
    need_cuda();
    let (free, total) = ladder_trainer::cuda::mem_info(0).expect("memory");
    assert!(total > 1 << 30 && free <= total, "free {free}, total {total}");
    assert!(ladder_trainer::cuda::built(), "a CUDA machine's build has the graph shim");
}
