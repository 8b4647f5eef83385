//! `ladder-coordinator`: turns sweep specs into jobs, leases them to workers, fences stale
//! attempts, and keeps sweeps, curves, checkpoints and datasets durably in redb.
pub mod auth;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod records;
pub mod server;
pub mod service;
pub mod store;

pub use error::CoordError;
pub use server::{open_store, serve, serve_with_metrics};
pub use service::Config;
pub use store::Store;
