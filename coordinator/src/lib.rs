//! `ladder-coordinator`: turns sweep specs into jobs, leases them to workers, fences stale
//! attempts, and keeps sweeps, curves, checkpoints and datasets durably in redb.
//!
//! Where each concern lives, bottom up (each module uses only those above it):
//! - [`error`]: the one error type and its one map to gRPC status codes; [`clock`]: lease time;
//! - [`tables`]: every table and its layout; [`codec`]: the store's encoding of points;
//!   [`curves`]: a job's points in blocks of 32 steps; [`files`]: checkpoint bytes as files;
//!   [`records`]: the records kept and their domain views;
//! - [`store`]: the database and its one writer thread (group commit); [`migrate`]: older
//!   formats carried forward on open;
//! - [`app`]: the application layer: every operation, the one function that changes a job's
//!   state, the broadcasts, the live fits and the views, in domain types only;
//! - the adapters over it: [`service`] (the gRPC services), [`web`] (the live page) and
//!   [`metrics`] (the Prometheus scrape); [`auth`]: bearer tokens and roles; [`listen`]: the
//!   listener (backlog, connection cap, first-bytes deadline); [`server`]: TLS, health,
//!   reflection, the reaper and shutdown.
pub mod app;
pub mod auth;
pub mod clock;
pub mod codec;
pub mod curves;
pub mod error;
pub mod files;
pub mod listen;
pub mod metrics;
pub mod migrate;
pub mod records;
pub mod server;
pub mod service;
pub mod store;
pub mod tables;
pub mod web;

pub use app::{App, Config, Tls};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CoordError;
pub use listen::bind;
pub use server::{Listeners, open_store, serve, serve_all, serve_with_metrics};
pub use store::Store;
