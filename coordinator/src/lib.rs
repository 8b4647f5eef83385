//! `ladder-coordinator`: turns sweep specs into jobs, leases them to workers, fences stale
//! attempts, and keeps sweeps, curves, checkpoints and datasets durably in redb.
pub mod attempts;
pub mod auth;
pub mod blobs;
pub mod error;
pub mod metrics;
pub mod queue;
pub mod records;
pub mod server;
pub mod service;
pub mod store;
pub mod sweeps;
pub mod wire;
pub mod workers;

pub use error::CoordError;
pub use server::{bind, open_store, serve, serve_with_metrics};
pub use service::Config;
pub use store::Store;
