//! A job's status: its shape and accounting, progress, failure and config.
use ladder_core::accounting::Accounting;
use ladder_core::branch::{BranchKind, BranchOf};
use ladder_core::job::JobConfig;
use ladder_core::shape::Shape;
use ladder_core::status::{Failure, JobStatus, Progress};
use ladder_core::{DomainError, Result};

use crate::pb;

/// A u32 on the wire, saturating (shapes are validated far below u32::MAX).
fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl From<&JobStatus> for pb::Job {
    fn from(j: &JobStatus) -> Self {
        pb::Job {
            id: j.id,
            sweep_id: j.sweep_id,
            index: j.index,
            state: pb::JobState::from(j.state) as i32,
            attempt: j.attempt,
            max_restarts: j.max_restarts,
            restarts: j.restarts,

            n_layer: u32_of(j.shape.n_layer),
            d_model: u32_of(j.shape.d_model),
            n_ctx: u32_of(j.shape.n_ctx),
            n_heads: u32_of(j.shape.n_heads),
            d_ff: u32_of(j.shape.d_ff),
            vocab: u32_of(j.shape.vocab),
            batch_tokens: j.batch_tokens,
            dataset_tokens: j.dataset_tokens.unwrap_or(0),
            seed: j.seed,
            lr: j.lr,
            n_params: j.accounting.n,
            n_kaplan: j.accounting.n_kaplan,
            n_total: j.accounting.n_total,
            fwd_flops_per_token: j.accounting.fwd_flops_per_token,
            total_steps: j.total_steps,
            step: j.progress.step,
            tokens: j.progress.tokens,
            train_loss: j.progress.train_loss.unwrap_or(f64::NAN),
            val_loss: j.progress.val_loss.unwrap_or(f64::NAN),
            tokens_per_s: j.progress.tokens_per_s,
            worker_id: j.worker_id.clone().unwrap_or_default(),
            failure: j.failure.as_ref().map_or(pb::FailureKind::Unspecified, |f| f.kind.into()) as i32,
            failure_message: j.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default(),
            checkpoint_step: j.checkpoint_step,
            resumed_from_step: j.resumed_from_step,
            waiting: j.waiting.clone().unwrap_or_default(),
            branch: j.branch.as_ref().map(pb::Branch::from),
            log_tail: j.log_tail.clone(),
            config: j.config.as_ref().map(pb::JobConfig::from),
            sealed: j.sealed,
        }
    }
}

impl From<&BranchOf> for pb::Branch {
    fn from(b: &BranchOf) -> Self {
        let (kind, to_tokens, k, window_tokens) = match b.kind {
            BranchKind::Cooldown { to_tokens } => ("cooldown", to_tokens, 0.0, 0),
            BranchKind::Batch { k, window_tokens } => ("batch", 0, k, window_tokens),
        };
        pb::Branch { parent: b.parent, step: b.step, tokens: b.tokens, kind: kind.into(), to_tokens, k, window_tokens }
    }
}

impl TryFrom<&pb::Branch> for BranchOf {
    type Error = DomainError;

    fn try_from(b: &pb::Branch) -> Result<Self> {
        let kind = match b.kind.as_str() {
            "cooldown" => BranchKind::Cooldown { to_tokens: b.to_tokens },
            "batch" if b.k.is_finite() && b.k > 0.0 => BranchKind::Batch { k: b.k, window_tokens: b.window_tokens },
            other => return Err(DomainError::message("job.branch.kind", format!("{other:?} is no branch kind"))),
        };
        Ok(BranchOf { parent: b.parent, step: b.step, tokens: b.tokens, kind })
    }
}

impl TryFrom<&pb::Job> for JobStatus {
    type Error = DomainError;

    fn try_from(j: &pb::Job) -> Result<Self> {
        let shape = Shape {
            n_layer: i64::from(j.n_layer),
            d_model: i64::from(j.d_model),
            n_heads: i64::from(j.n_heads),
            d_ff: i64::from(j.d_ff),
            n_ctx: i64::from(j.n_ctx),
            vocab: i64::from(j.vocab),
        };
        shape.validate().map_err(|e| DomainError::message(format!("job {}", j.id), e.to_string()))?;
        let config = j.config.as_ref().map(JobConfig::try_from).transpose()?;
        let failure = match pb::FailureKind::try_from(j.failure) {
            Ok(pb::FailureKind::Unspecified) => None,
            _ => Some(Failure { kind: super::failure_kind(j.failure), message: j.failure_message.clone() }),
        };
        Ok(JobStatus {
            id: j.id,
            sweep_id: j.sweep_id,
            index: j.index,
            state: super::job_state(j.state)?,
            attempt: j.attempt,
            restarts: j.restarts,
            max_restarts: j.max_restarts,
            accounting: Accounting::of(&shape),
            shape,
            batch_tokens: j.batch_tokens,
            dataset_tokens: (j.dataset_tokens > 0).then_some(j.dataset_tokens),
            seed: j.seed,
            lr: j.lr,
            total_steps: j.total_steps,
            progress: Progress {
                step: j.step,
                tokens: j.tokens,
                train_loss: (j.step > 0 && j.train_loss.is_finite()).then_some(j.train_loss),
                val_loss: j.val_loss.is_finite().then_some(j.val_loss),
                tokens_per_s: j.tokens_per_s,
            },
            worker_id: (!j.worker_id.is_empty()).then(|| j.worker_id.clone()),
            failure,
            checkpoint_step: j.checkpoint_step,
            resumed_from_step: j.resumed_from_step,
            waiting: (!j.waiting.is_empty()).then(|| j.waiting.clone()),
            branch: j.branch.as_ref().map(BranchOf::try_from).transpose()?,
            log_tail: j.log_tail.clone(),
            sealed: j.sealed,
            config,
        })
    }
}
