//! How much device memory a training attempt needs, by estimate: what a worker checks before it
//! packs several jobs onto one GPU. Counted for CUDA with bf16 autocast, as the trainer runs:
//!
//! - fp32 weights, their `.grad`, the accumulated gradient and AdamW's two moments: 20 bytes per
//!   parameter, plus autocast's bf16 copy of the weights (2 bytes);
//! - activations kept for the backward pass, per layer and token of a micro-batch: 34·d_model
//!   bytes in 16-bit form (Korthikanti et al. 2022, eq. 2, without the attention-score term, which
//!   flash attention does not keep), plus the fp32 LayerNorm inputs and residuals (16·d_model);
//! - the logits: bf16 values, their fp32 log-softmax and its gradient (10 bytes per vocab entry
//!   and token);
//! - a fixed [`CONTEXT_BYTES`] per process for the CUDA context, cuBLAS workspace and allocator
//!   slack.
use serde::{Deserialize, Serialize};

use crate::shape::Shape;

/// The CUDA context and libraries of one trainer process.
pub const CONTEXT_BYTES: u64 = 768 << 20;

/// An estimate, in bytes, with its parts so an error can say what is large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// Weights, gradients, accumulator, AdamW moments, autocast weight copies.
    pub state: u64,
    pub activations: u64,
    pub logits: u64,
    pub context: u64,
}

impl MemoryEstimate {
    /// One job of `shape` with micro-batches of `micro_seqs` sequences, or `members` such jobs
    /// fused into one process (they share the context).
    pub fn training(shape: &Shape, micro_seqs: u64, members: u64) -> Self {
        let acct = crate::accounting::Accounting::of(shape);
        let k = members.max(1);
        let tokens = micro_seqs.saturating_mul(shape.n_ctx as u64);
        let d = shape.d_model as u64;
        let per_layer_token = 50u64.saturating_mul(d);
        let activations = (shape.n_layer as u64).saturating_mul(tokens).saturating_mul(per_layer_token);
        let logits = tokens.saturating_mul(shape.vocab as u64).saturating_mul(10);
        Self {
            state: acct.n_total.saturating_mul(22).saturating_mul(k),
            activations: activations.saturating_mul(k),
            logits: logits.saturating_mul(k),
            context: CONTEXT_BYTES,
        }
    }

    pub fn total(&self) -> u64 {
        self.state.saturating_add(self.activations).saturating_add(self.logits).saturating_add(self.context)
    }
}

impl std::fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        write!(
            f,
            "{:.2} GiB (weights, gradients and AdamW {:.2}, activations {:.2}, logits {:.2}, CUDA context {:.2})",
            gib(self.total()),
            gib(self.state),
            gib(self.activations),
            gib(self.logits),
            gib(self.context)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_small_at_micro_batch_8_counts_each_part() {
        // 12x768, n_ctx 1024, GPT-2 vocab: N_total = 123.7M (GPT-2's 124.4M less its learned positions).
        let s = Shape { n_layer: 12, d_model: 768, n_heads: 12, d_ff: 3072, n_ctx: 1024, vocab: 50257 };
        let e = MemoryEstimate::training(&s, 8, 1);
        assert_eq!(e.state, (124_439_808 - 1024 * 768) * 22);
        assert_eq!(e.activations, 12 * 8 * 1024 * 50 * 768);
        let gib = e.total() as f64 / (1u64 << 30) as f64;
        assert!((10.0..11.0).contains(&gib), "{e}");
        assert_eq!(e.logits, 8 * 1024 * 50257 * 10);
        // Fusing K members multiplies all but the context.
        let f = MemoryEstimate::training(&s, 8, 4);
        assert_eq!(f.total() - CONTEXT_BYTES, 4 * (e.total() - CONTEXT_BYTES));
        assert!(e.to_string().contains("activations"), "{e}");
    }
}
