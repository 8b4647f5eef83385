//! Must show 3: N and FLOPs match their closed forms, and the exact N matches the model's variables.
use ladder_trainer::accounting::Accounting;
use ladder_trainer::model::{Gpt, Shape};
use tch::Device;
use tch::nn::VarStore;

fn shape(n_layer: i64, d_model: i64, n_ctx: i64, vocab: i64) -> Shape {
    Shape { n_layer, d_model, n_heads: d_model / 64, d_ff: 4 * d_model, n_ctx, vocab }
}

#[test]
fn closed_forms_hold_for_several_shapes() {
    for (l, d, ctx, v) in [(2, 128, 256, 256), (4, 256, 512, 50257), (6, 384, 1024, 50257), (8, 512, 128, 1000)] {
        let s = shape(l, d, ctx, v);
        let a = Accounting::of(&s);
        let (l, d, ctx, v) = (l as u64, d as u64, ctx as u64, v as u64);
        assert_eq!(a.n_kaplan, 12 * l * d * d);
        // Exact N adds the biases and LayerNorms Kaplan drops: 13·L·d + 2·d (d_ff = 4d).
        assert_eq!(a.n, 12 * l * d * d + 13 * l * d + 2 * d);
        assert_eq!(a.n_embedding, v * d);
        assert_eq!(a.n_total, a.n + a.n_embedding);
        let n = a.n as f64;
        let context = 2.0 * (l * ctx * d) as f64;
        assert_eq!(a.fwd_flops_per_token, 2.0 * n + context);
        assert_eq!(a.fwd_flops_per_token_no_context, 2.0 * n);
        assert_eq!(a.fwd_flops_per_token_with_unembedding, 2.0 * n + context + 2.0 * (d * v) as f64);
        assert_eq!(a.compute_kaplan(1000), 6.0 * n * 1000.0);
        // Exact: 24·L·d² of matmuls, causal attention 2·L·d·(n_ctx+1), unembedding 2·d·V.
        let exact = (24 * l * d * d) as f64 + 2.0 * (l * d * (ctx + 1)) as f64 + 2.0 * (d * v) as f64;
        assert_eq!(a.fwd_flops_per_token_exact, exact);
        assert_eq!(a.compute_exact(10), 30.0 * exact);
    }
}

#[test]
fn gpt2_small_has_its_published_parameter_count() {
    // GPT-2 small (12 × 768, n_ctx 1024, vocab 50257, tied unembedding): 124,439,808 parameters,
    // of which 1024 × 768 are its learned positions; rotary positions have none.
    let a = Accounting::of(&shape(12, 768, 1024, 50257));
    assert_eq!(a.n_total, 124_439_808 - 1024 * 768);
    assert_eq!(a.n_kaplan, 84_934_656);
}

#[test]
fn exact_n_counts_the_models_variables() {
    for (l, d) in [(1, 64), (3, 128), (2, 192)] {
        let s = shape(l, d, 64, 300);
        let vs = VarStore::new(Device::Cpu);
        let _model = Gpt::new(&vs.root(), s, Device::Cpu).expect("model");
        let vars = vs.variables();
        let total: i64 = vars.values().map(|t| t.numel() as i64).sum();
        let embed: i64 = vars.iter().filter(|(n, _)| n.contains("wte")).map(|(_, t)| t.numel() as i64).sum();
        let a = Accounting::of(&s);
        assert_eq!(total as u64, a.n_total, "shape {l}x{d}");
        assert_eq!((total - embed) as u64, a.n, "shape {l}x{d}");
    }
}
