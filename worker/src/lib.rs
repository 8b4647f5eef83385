//! `ladder-worker`: registers with the coordinator, leases jobs by long-poll, and runs each
//! attempt as a `ladder-train` child process pinned to its slot's device.
pub mod archive;
pub mod attempt;
pub mod daemon;
pub mod error;

pub use daemon::{WorkerConfig, run};
pub use error::WorkerError;
