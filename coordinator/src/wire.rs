//! The coordinator's records as wire messages, and wire events as the store's domain events: the
//! one boundary between the two, used by the services alone.
use ladder_proto::pb;

use crate::attempts::AttemptEvent;
use crate::records::*;
use crate::sweeps::Counts;
use crate::workers::WorkerInfo;

impl From<&JobRecord> for pb::Job {
    fn from(j: &JobRecord) -> Self {
        pb::Job {
            id: j.id,
            sweep_id: j.sweep_id,
            index: j.index,
            state: pb::JobState::from(j.state) as i32,
            attempt: j.attempt,
            max_restarts: j.max_restarts,
            restarts: j.restarts,
            config_toml: j.config_toml.clone(),
            n_layer: j.shape.n_layer as u32,
            d_model: j.shape.d_model as u32,
            n_ctx: j.shape.n_ctx as u32,
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
            train_loss: j.progress.train_loss,
            val_loss: j.progress.val_loss.unwrap_or(f64::NAN),
            tokens_per_s: j.progress.tokens_per_s,
            worker_id: j.lease.as_ref().map(|l| l.worker_id.clone()).unwrap_or_default(),
            failure: j.failure.as_ref().map_or(pb::FailureKind::Unspecified, |f| f.0.into()) as i32,
            failure_message: j.failure.as_ref().map(|f| f.1.clone()).unwrap_or_default(),
            checkpoint_step: j.checkpoint_step,
            resumed_from_step: j.resumed_from_step,
        }
    }
}

/// The assignment of a job just leased; `checkpoint_steps` are its stored checkpoints.
pub fn assignment(j: &JobRecord, ttl_ms: u64, checkpoint_steps: Vec<u64>) -> pb::Assignment {
    pb::Assignment {
        checkpoint_steps,
        job_id: j.id,
        attempt: j.attempt,
        config_toml: j.config_toml.clone(),
        dataset_sha256: j.dataset_sha256.clone(),
        resume_step: j.checkpoint_step,
        lease_ttl_ms: ttl_ms,
        memory_bytes: j.memory_bytes,
    }
}

pub fn sweep(s: &SweepRecord, c: Counts) -> pb::Sweep {
    let state = match s.state {
        SweepState::Running => pb::SweepState::Running,
        SweepState::Done => pb::SweepState::Done,
        SweepState::Cancelled => pb::SweepState::Cancelled,
    };
    pb::Sweep {
        id: s.id,
        name: s.name.clone(),
        state: state as i32,
        spec_toml: s.spec_toml.clone(),
        dataset: s.dataset.clone(),
        dataset_sha256: s.dataset_sha256.clone(),
        jobs_total: c.total,
        jobs_queued: c.queued,
        jobs_running: c.running,
        jobs_succeeded: c.succeeded,
        jobs_failed: c.failed,
        jobs_cancelled: c.cancelled,
        created_ms: s.created_ms,
    }
}

impl From<&DatasetRecord> for pb::Dataset {
    fn from(d: &DatasetRecord) -> Self {
        pb::Dataset {
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            train_tokens: d.train_bytes / 2,
            val_tokens: d.val_bytes / 2,
            vocab: d.vocab,
            tokenizer: d.tokenizer.clone(),
        }
    }
}

impl From<&StoredPoint> for pb::MetricPoint {
    fn from(p: &StoredPoint) -> Self {
        let mut m = pb::MetricPoint::from(&p.point);
        m.attempt = p.attempt;
        m
    }
}

impl From<&CheckpointInfo> for pb::CheckpointInfo {
    fn from(c: &CheckpointInfo) -> Self {
        pb::CheckpointInfo {
            job_id: c.job_id,
            step: c.step,
            attempt: c.attempt,
            bytes: c.bytes,
            sha256: c.sha256.clone(),
        }
    }
}

impl From<&WorkerInfo> for pb::WorkerInfo {
    fn from(w: &WorkerInfo) -> Self {
        pb::WorkerInfo {
            id: w.record.id.clone(),
            name: w.record.name.clone(),
            slots: w.record.slots.clone(),
            last_seen_ms: w.record.last_seen_ms,
            running_jobs: w.running_jobs.clone(),
        }
    }
}

/// A report's events as domain events. An invalid point (a non-finite value, say) is left out
/// and counted, with the first reason; the rest of the batch goes on.
pub fn events(evs: &[pb::AttemptEvent]) -> (Vec<AttemptEvent>, u32, Option<String>) {
    let mut out = Vec::with_capacity(evs.len());
    let (mut refused, mut why) = (0u32, None);
    for ev in evs {
        let e = match &ev.kind {
            Some(pb::attempt_event::Kind::Metrics(m)) => match ladder_core::events::MetricPoint::try_from(m) {
                Ok(p) => AttemptEvent::Point(p),
                Err(e) => {
                    refused += 1;
                    why.get_or_insert_with(|| e.to_string());
                    continue;
                }
            },
            Some(pb::attempt_event::Kind::Started(s)) => {
                AttemptEvent::Started { resumed_from_step: s.resumed_from_step }
            }
            Some(pb::attempt_event::Kind::Finished(f)) => AttemptEvent::Finished { step: f.step },
            Some(pb::attempt_event::Kind::Failed(f)) => AttemptEvent::Failed {
                kind: ladder_proto::convert::failure_kind(f.kind),
                message: f.message.chars().take(4096).collect(),
            },
            Some(pb::attempt_event::Kind::Released(r)) => AttemptEvent::Released { step: r.step },
            None => {
                refused += 1;
                why.get_or_insert_with(|| "an event without a kind".into());
                continue;
            }
        };
        out.push(e);
    }
    (out, refused, why)
}
