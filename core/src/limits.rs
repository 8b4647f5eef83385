//! Limits that keep a typo in a spec or a message from scheduling the impossible. Every size that
//! comes from input is checked against these before it is multiplied.

/// Most jobs one sweep may expand into.
pub const MAX_JOBS: usize = 10_000;
/// Longest context a model may have.
pub const MAX_N_CTX: i64 = 131_072;
/// Most parameters (N_total) one model may have.
pub const MAX_N_TOTAL: u64 = 1_000_000_000_000;
/// Most members one fused model may hold.
pub const MAX_FUSE: u32 = 64;
/// Token files are uint16, so ids must fit.
pub const MAX_VOCAB: i64 = 1 << 16;
