//! `ladder-trainer`: trains one decoder-only Transformer job attempt with libtorch and reports
//! its loss curve and gradient-noise statistics as events. See DESIGN.md for the data flow.
pub mod accounting;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod events;
pub mod gns;
pub mod model;
pub mod optim;
pub mod rng;
pub mod tokenizer;
pub mod train;

pub use config::{Job, JobConfig};
pub use error::{Result, TrainerError};
pub use events::{Event, FailureKind, MetricPoint};
pub use train::{Outcome, resolve_job, run};
