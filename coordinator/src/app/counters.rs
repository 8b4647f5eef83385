//! The coordinator's running counts, kept by the application layer as it works and read by each
//! metrics scrape (rates are Prometheus' `rate()` of these).
use std::sync::atomic::AtomicU64;

#[derive(Debug, Default)]
pub struct Counters {
    pub points: AtomicU64,
    /// Events refused as invalid (the rest of their batches were stored).
    pub refused: AtomicU64,
    pub lease_expiries: AtomicU64,
    pub checkpoint_bytes: AtomicU64,
}
