//! `ladder-coordinator`: turns sweep specs into jobs, leases them to workers, fences stale
//! attempts, and keeps sweeps, curves, checkpoints and datasets durably in redb.
//!
//! Where each concern lives, bottom up (each module uses only those above it):
//! - [`error`]: the one error type and its one map to gRPC status codes; [`clock`]: lease time;
//! - [`tables`]: every table and its layout; [`codec`]: the store's encoding of points;
//!   [`records`]: the records kept and their domain views;
//! - [`lifecycle`]: a job's state moves and the indexes that follow them (queue, leases, open
//!   jobs, staged uploads);
//! - [`store`]: the database and its one writer thread (group commit); [`migrate`]: older
//!   formats carried forward on open;
//! - the operations the services run in the store: [`sweeps`] (submit, find, cancel, list),
//!   [`queue`] (claim, reap, grace), [`attempts`] (heartbeats, reports, curves), [`blobs`]
//!   (checkpoints and datasets, chunk by chunk), [`workers`] (registration and credentials);
//! - [`service`]: the gRPC services, by caller (users, workers, uploads); [`auth`]: bearer
//!   tokens and roles; [`metrics`]: the Prometheus scrape; [`listen`]: the listener (backlog,
//!   connection cap, first-bytes deadline); [`server`]: TLS, health, reflection, the reaper and
//!   shutdown.
pub mod attempts;
pub mod auth;
pub mod blobs;
pub mod branches;
pub mod clock;
pub mod codec;
pub mod error;
pub mod fits;
pub mod lifecycle;
pub mod listen;
pub mod logs;
pub mod metrics;
pub mod migrate;
pub mod queue;
pub mod records;
pub mod renewals;
pub mod server;
pub mod service;
pub mod store;
pub mod sweeps;
pub mod tables;
pub mod web;
pub mod workers;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CoordError;
pub use listen::bind;
pub use server::{Listeners, open_store, serve, serve_all, serve_with_metrics};
pub use service::Config;
pub use store::Store;
