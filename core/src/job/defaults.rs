//! The values a job config takes for what it leaves unset.
use std::path::PathBuf;

use super::{DeviceRequest, Schedule};

/// EMA decay of the gradient-noise-scale estimates when a spec sets none.
pub const DEFAULT_GNS_EMA: f64 = 0.99;

pub(super) fn device() -> DeviceRequest {
    DeviceRequest::Auto
}
pub(super) fn yes() -> bool {
    true
}
pub(super) fn is_true(b: &bool) -> bool {
    *b
}
pub(super) fn schedule() -> Schedule {
    Schedule::Cosine
}
pub(super) fn min_lr_ratio() -> f64 {
    0.1
}
pub(super) fn weight_decay() -> f64 {
    0.1
}
pub(super) fn beta1() -> f64 {
    0.9
}
pub(super) fn beta2() -> f64 {
    0.95
}
pub(super) fn eps() -> f64 {
    1e-8
}
pub(super) fn grad_clip() -> f64 {
    1.0
}
pub(super) fn gns_ema() -> f64 {
    DEFAULT_GNS_EMA
}
pub(super) fn eval_every() -> u64 {
    100
}
pub(super) fn eval_windows() -> u64 {
    64
}
pub(super) fn checkpoint_dir() -> PathBuf {
    PathBuf::from("checkpoints")
}
pub(super) fn keep() -> usize {
    2
}
pub(super) fn branch_dir() -> PathBuf {
    PathBuf::from("branch")
}
