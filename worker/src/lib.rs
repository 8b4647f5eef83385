//! `ladder-worker`: registers with the coordinator, leases jobs by long-poll, and runs each
//! attempt as a `ladder-train` child process pinned to its slot's device.
pub mod archive;
pub mod attempt;
pub mod cpu;
pub mod daemon;
pub mod error;
pub mod gpu;
pub mod report;
pub mod transfer;

pub use daemon::{WorkerConfig, run};
pub use error::WorkerError;
