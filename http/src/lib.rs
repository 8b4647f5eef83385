//! `ladder-http`: what the coordinator and the workers share beside gRPC: what they serve over
//! plain HTTP, and the signals that stop them.
//!
//! - [`server`]: an axum router over hyper with a connection cap and deadlines;
//! - [`exposition`]: one scrape's Prometheus metrics (prometheus-client);
//! - [`metrics`]: the `/metrics` and `/healthz` routes on their own port;
//! - [`signal`]: SIGINT or SIGTERM cancels the daemon's one shutdown token.
pub mod exposition;
pub mod metrics;
pub mod server;
pub mod signal;

pub use exposition::Exposition;
pub use metrics::{Render, serve_metrics};
pub use server::{Limits, serve, serve_tls};
