//! Parameter and FLOP accounting (Kaplan et al. 2020, Table 1), recorded with every run.
use serde::{Deserialize, Serialize};

use crate::shape::Shape;

/// Counts for one shape. FLOPs count a multiply-add as 2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// N: non-embedding parameters, counted exactly (weights, biases, LayerNorms).
    pub n: u64,
    /// Kaplan's closed form 12·n_layer·d_model², beside the exact N.
    pub n_kaplan: u64,
    /// The token embedding (the unembedding is tied to it; rotary positions have no parameters).
    pub n_embedding: u64,
    /// N_total = N + embeddings.
    pub n_total: u64,
    /// Kaplan C_forward = 2N + 2·n_layer·n_ctx·d_attn per token.
    pub fwd_flops_per_token: f64,
    /// 2N: without the attention-context term.
    pub fwd_flops_per_token_no_context: f64,
    /// 2N + 2·n_layer·n_ctx·d_attn + 2·d_model·vocab: with the unembedding.
    pub fwd_flops_per_token_with_unembedding: f64,
    /// 2N + 2·d_model·vocab: with the unembedding, without the context term.
    pub fwd_flops_per_token_no_context_with_unembedding: f64,
    /// The matmuls this model runs, causal attention counted exactly (mean over positions),
    /// unembedding included; training costs 3× this per token.
    pub fwd_flops_per_token_exact: f64,
}

impl Accounting {
    pub fn of(s: &Shape) -> Self {
        let (l, d, ff, ctx, v) = (s.n_layer as u64, s.d_model as u64, s.d_ff as u64, s.n_ctx as u64, s.vocab as u64);
        let d_attn = d; // n_heads · d_head = d_model
        let per_layer = 2 * d // ln_1
            + d * 3 * d_attn + 3 * d_attn // c_attn
            + d_attn * d + d // attn.c_proj
            + 2 * d // ln_2
            + d * ff + ff // c_fc
            + ff * d + d; // mlp.c_proj
        let n = l * per_layer + 2 * d; // + ln_f
        let n_embedding = v * d;
        let nf = n as f64;
        let context = 2.0 * (l * ctx * d_attn) as f64;
        let unembed = 2.0 * (d * v) as f64;
        let matmul_params = l * (3 * d * d_attn + d_attn * d + 2 * d * ff);
        let exact = 2.0 * matmul_params as f64 + 2.0 * (l * d_attn * (ctx + 1)) as f64 + unembed;
        Self {
            n,
            n_kaplan: 12 * l * d * d,
            n_embedding,
            n_total: n + n_embedding,
            fwd_flops_per_token: 2.0 * nf + context,
            fwd_flops_per_token_no_context: 2.0 * nf,
            fwd_flops_per_token_with_unembedding: 2.0 * nf + context + unembed,
            fwd_flops_per_token_no_context_with_unembedding: 2.0 * nf + unembed,
            fwd_flops_per_token_exact: exact,
        }
    }

    /// Kaplan's C = 6·N·tokens.
    pub fn compute_kaplan(&self, tokens: u64) -> f64 {
        6.0 * self.n as f64 * tokens as f64
    }

    /// Training FLOPs actually run for `tokens` (forward + backward = 3× forward).
    pub fn compute_exact(&self, tokens: u64) -> f64 {
        3.0 * self.fwd_flops_per_token_exact * tokens as f64
    }
}
