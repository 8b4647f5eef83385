//! `ladder-http`: what the coordinator and the workers serve over plain HTTP beside gRPC.
//!
//! - [`server`]: an axum router over hyper with a connection cap and deadlines;
//! - [`exposition`]: one scrape's Prometheus metrics (prometheus-client);
//! - [`metrics`]: the `/metrics` and `/healthz` routes on their own port.
pub mod exposition;
pub mod metrics;
pub mod server;

pub use exposition::Exposition;
pub use metrics::{Render, serve_metrics};
pub use server::{Limits, serve, serve_tls};
