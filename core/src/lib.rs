//! `ladder-core`: the domain every crate shares, free of libtorch and of the wire.
//!
//! - the job: [`job`] (the trainer config and its validation into a [`job::Job`]), [`shape`],
//!   [`accounting`] (N and FLOPs, Kaplan Table 1), [`memory`] (device memory by estimate),
//!   [`limits`];
//! - the sweep: [`sweep`] (specs parsed, validated with line and key, expanded into job plans),
//!   [`placement`] (whether any slot can hold a job, and why not), [`retention`] (which
//!   checkpoints a job keeps);
//! - the trainer's side: [`events`] (its stdout event stream) and [`control`] (the commands it
//!   reads on stdin), [`dataset`] (`meta.json`);
//! - between coordinator and workers: [`attempt`] (an assignment and the events reported for
//!   it);
//! - what the coordinator reports: [`status`] (jobs, sweeps, workers, datasets, checkpoints,
//!   recorded points), with the one [`JobState`], [`SweepState`] and [`FailureKind`];
//! - [`error`]: the one error type, [`DomainError`].
//!
//! Modules depend downward only: `limits` ← `shape` ← `accounting` ← `job`/`memory` ← `sweep`;
//! `events`, `attempt` and `status` sit on top of those.
pub mod accounting;
pub mod attempt;
pub mod branch;
pub mod control;
pub mod dataset;
pub mod error;
pub mod events;
pub mod job;
pub mod limits;
pub mod memory;
pub mod placement;
pub mod retention;
pub mod schedule;
pub mod shape;
pub mod state;
pub mod status;
pub mod sweep;

pub use error::{DomainError, Result};
pub use state::{FailureKind, JobState, SweepState};
