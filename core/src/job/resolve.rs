//! A job config validated against its dataset's vocabulary, and what follows from it: the
//! shape, the batch in sequences, the micro-batch, the last step and the peak learning rate.
use super::{JobConfig, Schedule};
use crate::error::{DomainError, Result};
use crate::shape::Shape;

impl JobConfig {
    /// The model's shape, its vocabulary checked against the dataset's (when known).
    fn shape(&self, dataset_vocab: Option<i64>) -> Result<Shape> {
        let m = &self.model;
        let vocab = match (m.vocab, dataset_vocab) {
            (Some(v), Some(dv)) if v < dv => {
                return Err(DomainError::invalid(
                    "model.vocab",
                    format!("{v} is smaller than the dataset's vocabulary {dv}"),
                ));
            }
            (Some(v), _) => v,
            (None, Some(dv)) => dv,
            (None, None) => {
                return Err(DomainError::invalid("model.vocab", "not set and the dataset has no meta.json giving it"));
            }
        };
        let n_heads = match (m.n_heads, m.d_head) {
            (Some(h), Some(dh)) if h * dh != m.d_model => {
                return Err(DomainError::invalid(
                    "model.d_head",
                    format!("n_heads {h} × d_head {dh} != d_model {}", m.d_model),
                ));
            }
            (Some(h), _) => h,
            (None, Some(dh)) => {
                if dh <= 0 || m.d_model % dh != 0 {
                    return Err(DomainError::invalid(
                        "model.d_head",
                        format!("d_model {} is not divisible by d_head {dh}", m.d_model),
                    ));
                }
                m.d_model / dh
            }
            (None, None) => {
                return Err(DomainError::invalid("model.n_heads", "give n_heads or d_head"));
            }
        };
        let shape = Shape {
            n_layer: m.n_layer,
            d_model: m.d_model,
            n_heads,
            d_ff: match m.d_ff {
                Some(f) => f,
                None => m
                    .d_model
                    .checked_mul(4)
                    .ok_or_else(|| DomainError::invalid("model.d_model", format!("{} is too large", m.d_model)))?,
            },
            n_ctx: m.n_ctx,
            vocab,
        };
        shape.validate()?;
        Ok(shape)
    }

    /// The last step: from `stop`, counted from the root (a branch starts after its branch point).
    fn total_steps(&self) -> Result<u64> {
        let t = &self.train;
        // A branch counts from the root: its first step is the one after its branch point.
        let (start_step, start_tokens) = self.branch.as_ref().map_or((0, 0), |b| (b.step, b.tokens));
        if let Some(tok) = self.stop.tokens
            && tok <= start_tokens
        {
            return Err(DomainError::invalid(
                "stop.tokens",
                format!("{tok} is not past the branch point's {start_tokens} tokens"),
            ));
        }
        let steps_by_tokens = self.stop.tokens.map(|tok| start_step + (tok - start_tokens).div_ceil(t.batch_tokens));
        let total_steps = match (self.stop.steps, steps_by_tokens) {
            (Some(s), Some(k)) => s.min(k),
            (Some(s), None) | (None, Some(s)) => s,
            (None, None) => {
                return Err(DomainError::invalid(
                    "stop",
                    "give steps or tokens (target_val_loss alone may never be met)",
                ));
            }
        };
        if total_steps <= start_step {
            return Err(DomainError::invalid("stop", "the run would take 0 steps"));
        }
        Ok(total_steps)
    }

    /// Validates the config against the dataset vocabulary (when known) and derives the job.
    pub fn resolve(&self, dataset_vocab: Option<i64>) -> Result<Job> {
        let shape = self.shape(dataset_vocab)?;

        let t = &self.train;
        let n_ctx = shape.n_ctx as u64;
        if t.batch_tokens == 0 || t.batch_tokens % n_ctx != 0 {
            return Err(DomainError::invalid(
                "train.batch_tokens",
                format!("{} is not a positive multiple of n_ctx {n_ctx}", t.batch_tokens),
            ));
        }
        let batch_seqs = t.batch_tokens / n_ctx;
        let micro_seqs = self.micro_seqs();
        if micro_seqs == 0 || batch_seqs % micro_seqs != 0 {
            return Err(DomainError::invalid(
                "train.micro_batch",
                format!("the batch of {batch_seqs} sequences is not a multiple of the micro-batch {micro_seqs}"),
            ));
        }
        let lr = t.lr.at(crate::accounting::Accounting::of(&shape).n as f64, shape.d_model);
        check_range("train.lr", lr, 0.0, 1.0, false)?;
        check_range("train.beta1", t.beta1, 0.0, 1.0, true)?;
        check_range("train.beta2", t.beta2, 0.0, 1.0, true)?;
        check_range("train.min_lr_ratio", t.min_lr_ratio, 0.0, 1.0, true)?;
        check_range("train.gns_ema", t.gns_ema, 0.0, 1.0, true)?;
        if !(t.weight_decay >= 0.0 && t.eps > 0.0 && t.grad_clip >= 0.0) {
            return Err(DomainError::invalid("train", "weight_decay and grad_clip must be >= 0, eps > 0"));
        }
        let total_steps = self.total_steps()?;
        if t.schedule == Schedule::Wsd
            && let Some(d) = t.decay_start
            && d >= total_steps
        {
            return Err(DomainError::invalid(
                "train.decay_start",
                format!("step {d} is not before the last step {total_steps}"),
            ));
        }
        match (t.rewarmup_steps, t.rewarmup_from_lr, &self.branch) {
            (None, None, _) => {}
            (Some(n), Some(from), Some(_)) if n >= 1 && from.is_finite() && from > 0.0 => {}
            _ => {
                return Err(DomainError::invalid(
                    "train.rewarmup_steps",
                    "a re-warmup needs a branch start, rewarmup_steps ≥ 1 and a positive rewarmup_from_lr",
                ));
            }
        }
        if self.eval.every == 0 || self.eval.windows == 0 {
            return Err(DomainError::invalid("eval", "every and windows must be >= 1"));
        }
        if let Some(d) = self.data.max_tokens
            && d <= n_ctx
        {
            return Err(DomainError::invalid(
                "data.max_tokens",
                format!("D = {d} leaves no window of n_ctx {n_ctx} + 1 tokens"),
            ));
        }
        Ok(Job { config: self.clone(), shape, batch_seqs, micro_seqs, total_steps, peak_lr: lr })
    }
}

fn check_range(key: &str, v: f64, lo: f64, hi: f64, lo_inclusive: bool) -> Result<()> {
    let ok = v.is_finite() && v < hi && if lo_inclusive { v >= lo } else { v > lo };
    if ok {
        Ok(())
    } else {
        let open = if lo_inclusive { "[" } else { "(" };
        Err(DomainError::invalid(key, format!("{v} is outside {open}{lo}, {hi})")))
    }
}

/// A validated job with everything derived from its config.
#[derive(Debug, Clone)]
pub struct Job {
    pub config: JobConfig,
    pub shape: Shape,
    /// Sequences per optimizer step.
    pub batch_seqs: u64,
    /// Sequences per micro-batch.
    pub micro_seqs: u64,
    pub total_steps: u64,
    pub peak_lr: f64,
}

impl Job {
    pub fn accumulation(&self) -> u64 {
        self.batch_seqs / self.micro_seqs
    }

    pub fn batch_tokens(&self) -> u64 {
        self.config.train.batch_tokens
    }
}
