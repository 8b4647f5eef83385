//! Proto ↔ domain, in both directions, for every message: the only code that reads or writes
//! `pb` fields. Wire input is checked here, once: whatever fails becomes a [`DomainError`],
//! which the coordinator answers with `invalid_argument` and a client reports as a bad reply.
//!
//! - [`points`]: metric points and recorded points;
//! - [`jobs`]: job status, with its shape, progress and failure;
//! - [`sweeps`]: sweep status and its counts;
//! - [`attempts`]: assignments and the events a worker reports;
//! - [`config`]: the job config, field for field;
//! - [`catalog`]: datasets, workers and checkpoints.
pub mod attempts;
pub mod catalog;
pub mod config;
pub mod jobs;
pub mod points;
pub mod sweeps;

use ladder_core::{DomainError, FailureKind, JobState, Result, SweepState};

use crate::pb;

impl From<FailureKind> for pb::FailureKind {
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::Diverged => Self::Diverged,
            FailureKind::OutOfMemory => Self::OutOfMemory,
            FailureKind::InvalidConfig => Self::InvalidConfig,
            FailureKind::Crashed => Self::Crashed,
            FailureKind::Lost => Self::Lost,
            FailureKind::Parent => Self::Parent,
        }
    }
}

/// A failure kind from the wire's `i32`; values this build does not know (and an unset kind)
/// count as a crash: retried, never lost.
pub fn failure_kind(v: i32) -> FailureKind {
    match pb::FailureKind::try_from(v).unwrap_or(pb::FailureKind::Crashed) {
        pb::FailureKind::Diverged => FailureKind::Diverged,
        pb::FailureKind::OutOfMemory => FailureKind::OutOfMemory,
        pb::FailureKind::InvalidConfig => FailureKind::InvalidConfig,
        pb::FailureKind::Lost => FailureKind::Lost,
        pb::FailureKind::Parent => FailureKind::Parent,
        pb::FailureKind::Crashed | pb::FailureKind::Unspecified => FailureKind::Crashed,
    }
}

impl From<JobState> for pb::JobState {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Succeeded => Self::Succeeded,
            JobState::Failed => Self::Failed,
            JobState::Cancelled => Self::Cancelled,
            JobState::Pending => Self::Pending,
        }
    }
}

/// A job state from the wire's `i32`.
pub fn job_state(v: i32) -> Result<JobState> {
    match pb::JobState::try_from(v) {
        Ok(pb::JobState::Queued) => Ok(JobState::Queued),
        Ok(pb::JobState::Running) => Ok(JobState::Running),
        Ok(pb::JobState::Succeeded) => Ok(JobState::Succeeded),
        Ok(pb::JobState::Failed) => Ok(JobState::Failed),
        Ok(pb::JobState::Cancelled) => Ok(JobState::Cancelled),
        Ok(pb::JobState::Pending) => Ok(JobState::Pending),
        Ok(pb::JobState::Unspecified) | Err(_) => {
            Err(DomainError::message("job.state", format!("{v} is no job state")))
        }
    }
}

impl From<SweepState> for pb::SweepState {
    fn from(s: SweepState) -> Self {
        match s {
            SweepState::Running => Self::Running,
            SweepState::Done => Self::Done,
            SweepState::Cancelled => Self::Cancelled,
        }
    }
}

/// A sweep state from the wire's `i32`.
pub fn sweep_state(v: i32) -> Result<SweepState> {
    match pb::SweepState::try_from(v) {
        Ok(pb::SweepState::Running) => Ok(SweepState::Running),
        Ok(pb::SweepState::Done) => Ok(SweepState::Done),
        Ok(pb::SweepState::Cancelled) => Ok(SweepState::Cancelled),
        Ok(pb::SweepState::Unspecified) | Err(_) => {
            Err(DomainError::message("sweep.state", format!("{v} is no sweep state")))
        }
    }
}
