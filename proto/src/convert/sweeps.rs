//! A sweep's status and the counts of its jobs by state.
use ladder_core::status::{JobCounts, SweepStatus};
use ladder_core::{DomainError, Result};

use crate::pb;

impl From<&SweepStatus> for pb::Sweep {
    fn from(s: &SweepStatus) -> Self {
        let c = s.jobs;
        pb::Sweep {
            id: s.id,
            name: s.name.clone(),
            state: pb::SweepState::from(s.state) as i32,
            spec_toml: s.spec_toml.clone(),
            dataset: s.dataset.clone(),
            dataset_sha256: s.dataset_sha256.clone(),
            jobs_total: c.total,
            jobs_queued: c.queued,
            jobs_running: c.running,
            jobs_succeeded: c.succeeded,
            jobs_failed: c.failed,
            jobs_cancelled: c.cancelled,
            jobs_pending: c.pending,
            created_ms: s.created_ms,
        }
    }
}

impl TryFrom<&pb::Sweep> for SweepStatus {
    type Error = DomainError;

    fn try_from(s: &pb::Sweep) -> Result<Self> {
        Ok(SweepStatus {
            id: s.id,
            name: s.name.clone(),
            state: super::sweep_state(s.state)?,
            spec_toml: s.spec_toml.clone(),
            dataset: s.dataset.clone(),
            dataset_sha256: s.dataset_sha256.clone(),
            jobs: JobCounts {
                total: s.jobs_total,
                queued: s.jobs_queued,
                running: s.jobs_running,
                succeeded: s.jobs_succeeded,
                failed: s.jobs_failed,
                cancelled: s.jobs_cancelled,
                pending: s.jobs_pending,
            },
            created_ms: s.created_ms,
        })
    }
}
