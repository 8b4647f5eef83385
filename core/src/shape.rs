//! The shape of one decoder-only Transformer.
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};
use crate::limits::{MAX_N_CTX, MAX_N_TOTAL, MAX_VOCAB};

/// The shape of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub n_layer: i64,
    pub d_model: i64,
    pub n_heads: i64,
    pub d_ff: i64,
    pub n_ctx: i64,
    pub vocab: i64,
}

impl Shape {
    pub fn d_head(&self) -> i64 {
        self.d_model / self.n_heads
    }

    /// N_total with checked arithmetic: None when any product overflows.
    pub fn checked_n_total(&self) -> Option<u64> {
        let u = |v: i64| u64::try_from(v).ok();
        let (l, d, ff, v) = (u(self.n_layer)?, u(self.d_model)?, u(self.d_ff)?, u(self.vocab)?);
        let dd = d.checked_mul(d)?;
        let per_layer = dd
            .checked_mul(4)?
            .checked_add(d.checked_mul(ff)?.checked_mul(2)?)?
            .checked_add(d.checked_mul(9)?)?
            .checked_add(ff)?;
        let n = l.checked_mul(per_layer)?.checked_add(d.checked_mul(2)?)?;
        // Rotary positions have no parameters: the embeddings are the token table alone.
        n.checked_add(v.checked_mul(d)?)
    }

    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("model.n_layer", self.n_layer),
            ("model.d_model", self.d_model),
            ("model.n_heads", self.n_heads),
            ("model.d_ff", self.d_ff),
            ("model.n_ctx", self.n_ctx),
            ("model.vocab", self.vocab),
        ] {
            if v <= 0 {
                return Err(DomainError::invalid(key, format!("must be positive, got {v}")));
            }
        }
        if self.d_model % self.n_heads != 0 {
            return Err(DomainError::invalid(
                "model.n_heads",
                format!("d_model {} is not divisible by n_heads {}", self.d_model, self.n_heads),
            ));
        }
        if self.d_head() % 2 != 0 {
            return Err(DomainError::invalid(
                "model.d_head",
                format!("d_head {} (d_model / n_heads) must be even for rotary positions", self.d_head()),
            ));
        }
        // Sizes from input: every product is checked before Accounting multiplies them.
        match self.checked_n_total() {
            Some(n) if n <= MAX_N_TOTAL => {}
            Some(n) => {
                return Err(DomainError::invalid(
                    "model",
                    format!("{n} parameters exceed the limit of {}", MAX_N_TOTAL),
                ));
            }
            None => return Err(DomainError::invalid("model", "the parameter count overflows 64 bits")),
        }
        if self.n_ctx > MAX_N_CTX {
            return Err(DomainError::invalid(
                "model.n_ctx",
                format!("{} exceeds the limit of {}", self.n_ctx, MAX_N_CTX),
            ));
        }
        if self.vocab > MAX_VOCAB {
            return Err(DomainError::invalid(
                "model.vocab",
                format!("{} exceeds {MAX_VOCAB}, the most uint16 token files can hold", self.vocab),
            ));
        }
        Ok(())
    }
}
