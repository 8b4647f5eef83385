//! `ladder-core`: the domain every crate shares, free of libtorch and of the wire: job configs,
//! sweep specs and their expansion into jobs, model shapes, N and FLOPs accounting, the trainer's
//! event stream, and the one [`JobState`] and [`FailureKind`] the whole system speaks.
pub mod accounting;
pub mod error;
pub mod events;
pub mod job;
pub mod memory;
pub mod shape;
pub mod state;
pub mod sweep;

pub use error::{DomainError, Result};
pub use state::{FailureKind, JobState};
