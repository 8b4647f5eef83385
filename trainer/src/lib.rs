//! `ladder-trainer`: trains one decoder-only Transformer job attempt with libtorch and reports
//! its loss curve and gradient-noise statistics as events (see ARCHITECTURE.md at the repo root
//! for where this sits in a sweep).
//!
//! Where each concern lives:
//! - the model: [`model`] (a GPT-2-style decoder), [`fused`] (K models of one shape as one
//!   batched model); [`device`] (CPU/CUDA, precision), [`cuda`] (the C++ shim: graphs, fused AdamW);
//! - the data: [`tokenizer`], [`data`] (token files, `prepare`, the seeded window sampler), [`rng`];
//! - one step: [`optim`] (AdamW, schedules, clipping), [`gns`] (the gradient noise scale from
//!   the micro-batches), [`member`] (one job's optimizer, data stream, noise scale, early stopping,
//!   checkpoints and events), [`checkpoint`] (the folder format);
//! - the loops: [`setup`] (what every loop builds the same way), [`train`] (one job),
//!   [`train_cuda`] (a step captured as a CUDA graph), [`train_fused`] (K jobs fused),
//!   [`outcome`] (how an attempt ended); [`control`] (commands read between steps);
//!   [`gns_probe`] (B_simple measured at frozen weights);
//! - [`error`]: the one error type.
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
pub mod outcome;
pub mod rng;
pub mod rope;
pub mod setup;
pub mod tokenizer;
pub mod train;
pub mod train_cuda;
pub mod train_fused;

pub use config::{Job, JobConfig};
pub use control::Controls;
pub use error::{Result, TrainerError};
pub use events::{Event, FailureKind, MetricPoint};
pub use outcome::{Outcome, outcome_event};
pub use setup::resolve_job;
pub use train::{run, run_until};
pub use train_fused::run_fused;
