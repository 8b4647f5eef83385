//! The worker's GPUs and the memory its attempts hold on each. Several slots may name one device
//! (`--slots cuda:0,cuda:0,cuda:0`): each asks the coordinator only for jobs whose memory estimate
//! fits what that device has left, so small jobs pack onto one GPU and a large one waits for room.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::error::{Result, WorkerError};

/// Of a device's memory, the share attempts may plan to use (the rest absorbs fragmentation and
/// the estimate's error).
pub const USABLE: f64 = 0.92;

#[derive(Debug, Deserialize)]
struct Probe {
    devices: Vec<ProbeDevice>,
}

#[derive(Debug, Deserialize)]
struct ProbeDevice {
    index: usize,
    free_bytes: u64,
    total_bytes: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Device index → (budget, reserved) in bytes.
    devices: BTreeMap<usize, (u64, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct GpuPool(Arc<Mutex<Inner>>);

/// Memory held by a running attempt; released on drop.
#[derive(Debug)]
pub struct GpuReservation {
    pool: GpuPool,
    device: usize,
    bytes: u64,
}

/// The device index a slot names (`cuda` is device 0); None for CPU slots.
pub fn device_of(slot: &str) -> Option<usize> {
    match slot.trim() {
        "cuda" => Some(0),
        s => s.strip_prefix("cuda:").and_then(|i| i.parse().ok()),
    }
}

impl GpuPool {
    /// Asks `ladder-train devices` for the GPUs' memory, when any slot is a GPU slot.
    pub async fn probe(trainer: &Path, slots: &[String]) -> Result<Self> {
        let pool = Self::default();
        if !slots.iter().any(|s| device_of(s).is_some()) {
            return Ok(pool);
        }
        let out = tokio::process::Command::new(trainer)
            .arg("devices")
            .output()
            .await
            .map_err(|e| WorkerError::io(format!("running {} devices", trainer.display()), e))?;
        if !out.status.success() {
            return Err(WorkerError::Corrupt(format!(
                "{} devices failed ({}): {}",
                trainer.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let probe: Probe = serde_json::from_slice(&out.stdout)
            .map_err(|e| WorkerError::Corrupt(format!("{} devices printed no device list: {e}", trainer.display())))?;
        for s in slots {
            if let Some(i) = device_of(s)
                && !probe.devices.iter().any(|d| d.index == i)
            {
                return Err(WorkerError::Corrupt(format!(
                    "slot {s}: this machine has {} CUDA device(s)",
                    probe.devices.len()
                )));
            }
        }
        if let Ok(mut g) = pool.0.lock() {
            for d in probe.devices {
                let budget = ((d.total_bytes as f64 * USABLE) as u64).min(d.free_bytes);
                g.devices.insert(d.index, (budget, 0));
            }
        }
        Ok(pool)
    }

    /// A pool with these budgets, for tests.
    pub fn with_budgets(budgets: &[(usize, u64)]) -> Self {
        let pool = Self::default();
        if let Ok(mut g) = pool.0.lock() {
            for &(i, b) in budgets {
                g.devices.insert(i, (b, 0));
            }
        }
        pool
    }

    /// (left now, the whole budget) for a slot's device; (0, 0) when unknown (no limit).
    pub fn offer(&self, slot: &str) -> (u64, u64) {
        let Some(i) = device_of(slot) else { return (0, 0) };
        self.0
            .lock()
            .ok()
            .and_then(|g| g.devices.get(&i).copied())
            .map_or((0, 0), |(budget, reserved)| (budget.saturating_sub(reserved).max(1), budget))
    }

    /// Holds `bytes` on the slot's device until the reservation drops.
    pub fn reserve(&self, slot: &str, bytes: u64) -> Option<GpuReservation> {
        let device = device_of(slot)?;
        let mut g = self.0.lock().ok()?;
        let entry = g.devices.get_mut(&device)?;
        entry.1 = entry.1.saturating_add(bytes);
        Some(GpuReservation { pool: self.clone(), device, bytes })
    }
}

impl Drop for GpuReservation {
    fn drop(&mut self) {
        if let Ok(mut g) = self.pool.0.lock()
            && let Some(e) = g.devices.get_mut(&self.device)
        {
            e.1 = e.1.saturating_sub(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_shrink_what_a_device_offers() {
        let pool = GpuPool::with_budgets(&[(0, 80 << 30)]);
        assert_eq!(pool.offer("cuda:0"), (80 << 30, 80 << 30));
        assert_eq!(pool.offer("cpu"), (0, 0), "no limit off the GPU");
        let a = pool.reserve("cuda", 50 << 30).expect("reserved");
        assert_eq!(pool.offer("cuda:0").0, 30 << 30);
        let b = pool.reserve("cuda:0", 40 << 30).expect("reserved");
        assert_eq!(pool.offer("cuda:0").0, 1, "overcommitted: nothing more fits");
        drop(a);
        assert_eq!(pool.offer("cuda:0").0, 40 << 30);
        drop(b);
        assert_eq!(pool.offer("cuda:0"), (80 << 30, 80 << 30));
        assert_eq!(device_of("cuda:3"), Some(3));
        assert_eq!(device_of("cpu"), None);
    }
}
