//! `ladder-analysis`: a sweep's runs turned into scaling laws, as a library the CLI, the
//! coordinator's live fits and the web page share. It works on domain types (a job's status and
//! its recorded points), does no I/O, and renders nothing.
//!
//! - [`inputs`]: each finished job reduced to a run point and a smoothed curve, and why any job
//!   was left out;
//! - [`select`]: which runs and points feed which law (the base batch size, the largest D, the
//!   largest N with a data axis, the frontier's curves);
//! - [`fit`]: every law the data supports ([`fit::fit_all`]), with [`bcrit`] for the batch-size
//!   axis, [`cbs`] for the critical batch size by branching, [`holdout`] for the check before an
//!   extrapolation, [`backtest`] for how the error grows with the distance, [`options`] for how
//!   to fit and
//!   [`report`] for what comes out;
//! - [`predict`]: predictions, compute-optimal allocations, and warnings beyond the fitted range;
//! - [`sealed`]: sealed targets: their locked predictions and their scores;
//! - [`error`]: the one error type.
pub mod backtest;
pub mod bcrit;
pub mod cbs;
pub mod error;
pub mod fit;
pub mod holdout;
pub mod inputs;
pub mod options;
pub mod predict;
pub mod report;
pub mod sealed;
pub mod select;

pub use error::{AnalysisError, Result};
pub use fit::fit_all;
pub use inputs::{Inputs, JobCurve};
pub use options::Options;
pub use report::Report;
