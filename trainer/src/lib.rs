//! `ladder-trainer`: trains one decoder-only Transformer job attempt with libtorch and reports
//! its loss curve and gradient-noise statistics as events. See DESIGN.md for the data flow.
/// N and FLOPs accounting (shared with the coordinator through `ladder-proto`).
pub use ladder_core::accounting;
/// The event stream (shared with the worker through `ladder-proto`).
pub use ladder_core::events;
/// The job config (shared with the coordinator through `ladder-proto`).
pub use ladder_core::job as config;
pub mod checkpoint;
pub mod control;
pub mod cuda;
pub mod data;
pub mod device;
pub mod error;
pub mod fused;
pub mod gns;
pub mod gns_probe;
pub mod member;
pub mod model;
pub mod optim;
pub mod rng;
pub mod tokenizer;
pub mod train;
pub mod train_cuda;
pub mod train_fused;

pub use config::{Job, JobConfig};
pub use control::Controls;
pub use error::{Result, TrainerError};
pub use events::{Event, FailureKind, MetricPoint};
pub use train::{Outcome, outcome_event, resolve_job, run, run_until};
pub use train_fused::run_fused;
