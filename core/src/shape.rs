//! The shape of one decoder-only Transformer.
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Result};

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

/// Token files are uint16, so ids must fit.
pub const MAX_VOCAB: i64 = 1 << 16;

impl Shape {
    pub fn d_head(&self) -> i64 {
        self.d_model / self.n_heads
    }

    pub fn n_non_embedding(&self) -> u64 {
        crate::accounting::Accounting::of(self).n
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
        if self.vocab > MAX_VOCAB {
            return Err(DomainError::invalid(
                "model.vocab",
                format!("{} exceeds {MAX_VOCAB}, the most uint16 token files can hold", self.vocab),
            ));
        }
        Ok(())
    }
}
