//! Datasets (registered, and the header of one being uploaded), workers, checkpoints and the
//! retention policy that keeps them.
use ladder_core::dataset::{DatasetHeader, DatasetMeta};
use ladder_core::retention::Retention;
use ladder_core::status::{CheckpointInfo, DatasetInfo, WorkerStatus};
use ladder_core::{DomainError, Result};

use crate::pb;

impl From<&DatasetInfo> for pb::Dataset {
    fn from(d: &DatasetInfo) -> Self {
        pb::Dataset {
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            train_tokens: d.train_tokens,
            val_tokens: d.val_tokens,
            vocab: d.vocab,
            tokenizer: d.tokenizer.clone(),
        }
    }
}

impl From<&pb::Dataset> for DatasetInfo {
    fn from(d: &pb::Dataset) -> Self {
        DatasetInfo {
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            train_tokens: d.train_tokens,
            val_tokens: d.val_tokens,
            vocab: d.vocab,
            tokenizer: d.tokenizer.clone(),
        }
    }
}

impl From<&DatasetHeader> for pb::DatasetHeader {
    fn from(h: &DatasetHeader) -> Self {
        pb::DatasetHeader {
            name: h.name.clone(),
            meta_json: h.meta_json.clone(),
            train_bytes: h.train_bytes,
            val_bytes: h.val_bytes,
            vocab: h.meta.as_ref().map_or(h.vocab, |_| 0),
        }
    }
}

/// The header of a dataset upload, its `meta.json` parsed here, once.
impl TryFrom<&pb::DatasetHeader> for DatasetHeader {
    type Error = DomainError;

    fn try_from(h: &pb::DatasetHeader) -> Result<Self> {
        let meta = match h.meta_json.as_str() {
            "" => None,
            text => Some(DatasetMeta::parse(text, &format!("dataset {:?}: meta.json", h.name))?),
        };
        let vocab = match &meta {
            None => h.vocab,
            Some(m) => u32::try_from(m.vocab_size).map_err(|_| {
                DomainError::message("dataset", format!("{:?}: vocab {} is out of range", h.name, m.vocab_size))
            })?,
        };
        Ok(DatasetHeader {
            name: h.name.clone(),
            meta,
            meta_json: h.meta_json.clone(),
            train_bytes: h.train_bytes,
            val_bytes: h.val_bytes,
            vocab,
        })
    }
}

impl From<&WorkerStatus> for pb::WorkerInfo {
    fn from(w: &WorkerStatus) -> Self {
        pb::WorkerInfo {
            id: w.id.clone(),
            name: w.name.clone(),
            slots: w.slots.clone(),
            last_seen_ms: w.last_seen_ms,
            running_jobs: w.running_jobs.clone(),
        }
    }
}

impl From<&pb::WorkerInfo> for WorkerStatus {
    fn from(w: &pb::WorkerInfo) -> Self {
        WorkerStatus {
            id: w.id.clone(),
            name: w.name.clone(),
            slots: w.slots.clone(),
            last_seen_ms: w.last_seen_ms,
            running_jobs: w.running_jobs.clone(),
        }
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
            kept: c.kept.clone(),
        }
    }
}

impl From<&pb::CheckpointInfo> for CheckpointInfo {
    fn from(c: &pb::CheckpointInfo) -> Self {
        CheckpointInfo {
            job_id: c.job_id,
            step: c.step,
            attempt: c.attempt,
            bytes: c.bytes,
            sha256: c.sha256.clone(),
            kept: c.kept.clone(),
        }
    }
}

impl From<&Retention> for pb::RetentionPolicy {
    fn from(r: &Retention) -> Self {
        pb::RetentionPolicy { keep_latest: r.keep_latest, keep_best: r.keep_best, keep_final: r.keep_final }
    }
}

impl From<&pb::RetentionPolicy> for Retention {
    fn from(r: &pb::RetentionPolicy) -> Self {
        Retention { keep_latest: r.keep_latest, keep_best: r.keep_best, keep_final: r.keep_final }
    }
}
