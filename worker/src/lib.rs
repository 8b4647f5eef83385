//! `ladder-worker`: registers with the coordinator, leases jobs by long-poll, and runs each
//! attempt as a `ladder-train` child process pinned to its slot's device.
//!
//! Where each concern lives:
//! - [`daemon`]: registration, heartbeats, and each slot's loop of acquire and run;
//! - [`attempt`]: one attempt (one job or several fused): preparation, the child process, its
//!   events and checkpoints;
//! - [`report`]: each attempt's outbox of events (ordered, batched, spilled to disk while the
//!   coordinator is away);
//! - [`transfer`]: datasets and checkpoints moved as files; [`archive`]: checkpoints as tar;
//! - [`rpc`]: the connection to the coordinator, in domain types (the only wire code);
//!   [`retry`]: which errors are tried again;
//! - [`cpu`] and [`gpu`]: the cores and device memory attempts share; [`env`]: what every
//!   attempt of the worker shares, and its metrics;
//! - [`error`]: the one error type.
pub mod archive;
pub mod attempt;
pub mod cpu;
pub mod daemon;
pub mod env;
pub mod error;
pub mod gpu;
pub mod report;
pub mod retry;
pub mod rpc;
pub mod transfer;

pub use daemon::{WorkerConfig, run, run_with_metrics};
pub use error::WorkerError;
