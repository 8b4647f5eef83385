//! The worker's GPUs and the memory its attempts hold on each. Several slots may name one device
//! (`--slots cuda:0,cuda:0,cuda:0`): each asks the coordinator only for jobs whose memory estimate
//! fits what that device has left, so small jobs pack onto one GPU and a large one waits for room.
//!
//! Slots of one device take turns ([`GpuPool::turn`]): one slot at a time reads what is left,
//! asks, and reserves what it leased, so two idle slots never both offer the same memory. A
//! reservation remembers whether another one shared its device while it lived: an attempt that
//! runs out of memory beside others is retried alone.
//!
//! The inventory comes from `ladder-train devices`, or from `--simulate-gpus` (each device's
//! memory given, its attempts run on the CPU): how the scheduling is tested without a GPU.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// One device: its budget, what is reserved, the most ever reserved, and the live reservations.
#[derive(Debug, Default)]
struct Device {
    budget: u64,
    reserved: u64,
    peak: u64,
    /// Each live reservation's "shared" flag.
    live: Vec<Arc<AtomicBool>>,
    /// Held by the slot whose turn it is.
    turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Default)]
struct Inner {
    devices: BTreeMap<usize, Device>,
    /// Simulated devices: attempts run on the CPU.
    simulated: bool,
}

#[derive(Debug, Clone, Default)]
pub struct GpuPool(Arc<Mutex<Inner>>);

/// Memory held by a running attempt; released on drop.
#[derive(Debug)]
pub struct GpuReservation {
    pool: GpuPool,
    device: usize,
    bytes: u64,
    shared: Arc<AtomicBool>,
}

impl GpuReservation {
    /// Whether another attempt held memory on the device at any time during this one.
    pub fn shared(&self) -> Arc<AtomicBool> {
        self.shared.clone()
    }
}

/// The GPU index a slot names; None for a CPU slot (or one that is no slot: `--slots` checks
/// them).
pub fn device_of(slot: &str) -> Option<usize> {
    match slot.parse::<ladder_core::job::Slot>() {
        Ok(ladder_core::job::Slot::Gpu(i)) => usize::try_from(i).ok(),
        _ => None,
    }
}

/// Parses `--simulate-gpus`: `INDEX=SIZE` pairs, comma-separated, SIZE in bytes or with a
/// `KiB`, `MiB` or `GiB` suffix (`0=16GiB,1=8GiB`).
pub fn parse_simulated(spec: &str) -> Result<Vec<(usize, u64)>> {
    let bad = |m: String| WorkerError::Domain(ladder_core::DomainError::message("--simulate-gpus", m));
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (i, size) = part.split_once('=').ok_or_else(|| bad(format!("{part:?}: expected INDEX=SIZE")))?;
        let index: usize = i.trim().parse().map_err(|_| bad(format!("{part:?}: {i:?} is not a device index")))?;
        let size = size.trim();
        let (num, unit) = match size.find(|c: char| c.is_ascii_alphabetic()) {
            Some(k) => (&size[..k], &size[k..]),
            None => (size, ""),
        };
        let mult: u64 = match unit {
            "" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => return Err(bad(format!("{part:?}: unknown unit {other:?} (KiB, MiB or GiB)"))),
        };
        let n: u64 = num.trim().parse().map_err(|_| bad(format!("{part:?}: {num:?} is not a whole number")))?;
        out.push((index, n.checked_mul(mult).ok_or_else(|| bad(format!("{part:?}: too large")))?));
    }
    Ok(out)
}

impl GpuPool {
    /// Asks `ladder-train devices` for the GPUs' memory, when any slot is a GPU slot.
    pub async fn probe(trainer: &Path, slots: &[String]) -> Result<Self> {
        if !slots.iter().any(|s| device_of(s).is_some()) {
            return Ok(Self::default());
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
        let budgets: Vec<(usize, u64)> = probe
            .devices
            .iter()
            .map(|d| (d.index, ((d.total_bytes as f64 * USABLE) as u64).min(d.free_bytes)))
            .collect();
        let pool = Self::with_budgets(&budgets);
        pool.check_slots(slots)?;
        Ok(pool)
    }

    /// Simulated devices with these memories (the usable share of each is the budget); their
    /// attempts run on the CPU.
    pub fn simulated(devices: &[(usize, u64)], slots: &[String]) -> Result<Self> {
        let budgets: Vec<(usize, u64)> = devices.iter().map(|&(i, m)| (i, (m as f64 * USABLE) as u64)).collect();
        let pool = Self::with_budgets(&budgets);
        if let Ok(mut g) = pool.0.lock() {
            g.simulated = true;
        }
        pool.check_slots(slots)?;
        Ok(pool)
    }

    fn check_slots(&self, slots: &[String]) -> Result<()> {
        let known: Vec<usize> = self.0.lock().map(|g| g.devices.keys().copied().collect()).unwrap_or_default();
        for s in slots {
            if let Some(i) = device_of(s)
                && !known.contains(&i)
            {
                return Err(WorkerError::Corrupt(format!("slot {s}: this machine has {} CUDA device(s)", known.len())));
            }
        }
        Ok(())
    }

    /// A pool with these budgets, for tests.
    pub fn with_budgets(budgets: &[(usize, u64)]) -> Self {
        let pool = Self::default();
        if let Ok(mut g) = pool.0.lock() {
            for &(i, b) in budgets {
                g.devices.insert(i, Device { budget: b, ..Device::default() });
            }
        }
        pool
    }

    /// The device the trainer of `slot` runs on: the slot's, or the CPU for a simulated GPU.
    pub fn trainer_device<'a>(&self, slot: &'a str) -> &'a str {
        let simulated = self.0.lock().map(|g| g.simulated).unwrap_or(false);
        if simulated && device_of(slot).is_some() { "cpu" } else { slot }
    }

    /// The whole budget of each slot's device (0 for a CPU slot), in slot order, as the
    /// coordinator is told at registration.
    pub fn slot_memory(&self, slots: &[String]) -> Vec<u64> {
        slots.iter().map(|s| self.offer(s).1).collect()
    }

    /// Waits for `slot`'s device's turn: held while the slot reads what is left, asks, and
    /// reserves what it leased. None for a CPU slot.
    pub async fn turn(&self, slot: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let i = device_of(slot)?;
        let turn = self.0.lock().ok()?.devices.get(&i)?.turn.clone();
        Some(turn.lock_owned().await)
    }

    /// (left now, the whole budget) for a slot's device; (0, 0) when unknown (no limit).
    pub fn offer(&self, slot: &str) -> (u64, u64) {
        let Some(i) = device_of(slot) else { return (0, 0) };
        self.0
            .lock()
            .ok()
            .and_then(|g| g.devices.get(&i).map(|d| (d.budget, d.reserved)))
            .map_or((0, 0), |(budget, reserved)| (budget.saturating_sub(reserved).max(1), budget))
    }

    /// Holds `bytes` on the slot's device until the reservation drops.
    pub fn reserve(&self, slot: &str, bytes: u64) -> Option<GpuReservation> {
        let device = device_of(slot)?;
        let mut g = self.0.lock().ok()?;
        let d = g.devices.get_mut(&device)?;
        d.reserved = d.reserved.saturating_add(bytes);
        d.peak = d.peak.max(d.reserved);
        let shared = Arc::new(AtomicBool::new(!d.live.is_empty()));
        if !d.live.is_empty() {
            for other in &d.live {
                other.store(true, Ordering::SeqCst);
            }
        }
        d.live.push(shared.clone());
        Some(GpuReservation { pool: self.clone(), device, bytes, shared })
    }

    /// (device, budget, reserved now, most ever reserved), for metrics and tests.
    pub fn usage(&self) -> Vec<(usize, u64, u64, u64)> {
        self.0
            .lock()
            .map(|g| g.devices.iter().map(|(&i, d)| (i, d.budget, d.reserved, d.peak)).collect())
            .unwrap_or_default()
    }
}

impl Drop for GpuReservation {
    fn drop(&mut self) {
        if let Ok(mut g) = self.pool.0.lock()
            && let Some(d) = g.devices.get_mut(&self.device)
        {
            d.reserved = d.reserved.saturating_sub(self.bytes);
            d.live.retain(|f| !Arc::ptr_eq(f, &self.shared));
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
        let a = pool.reserve("cuda:0", 50 << 30).expect("reserved");
        assert_eq!(pool.offer("cuda:0").0, 30 << 30);
        assert!(!a.shared().load(Ordering::SeqCst), "alone so far");
        let b = pool.reserve("cuda:0", 40 << 30).expect("reserved");
        assert_eq!(pool.offer("cuda:0").0, 1, "overcommitted: nothing more fits");
        assert!(a.shared().load(Ordering::SeqCst) && b.shared().load(Ordering::SeqCst), "both shared the device");
        drop(a);
        assert_eq!(pool.offer("cuda:0").0, 40 << 30);
        drop(b);
        assert_eq!(pool.offer("cuda:0"), (80 << 30, 80 << 30));
        assert_eq!(pool.usage(), vec![(0, 80 << 30, 0, 90 << 30)]);
        assert_eq!(device_of("cuda:3"), Some(3));
        assert_eq!(device_of("cpu"), None);
    }

    #[test]
    fn simulated_inventories_parse_and_run_on_the_cpu() {
        assert_eq!(parse_simulated("0=16GiB, 1=512MiB").expect("parses"), vec![(0, 16 << 30), (1, 512 << 20)]);
        assert!(parse_simulated("0=16TB").is_err());
        assert!(parse_simulated("x=1").is_err());
        let pool = GpuPool::simulated(&[(0, 1 << 30)], &["cuda:0".into(), "cuda:0".into()]).expect("pool");
        assert_eq!(pool.trainer_device("cuda:0"), "cpu");
        assert_eq!(pool.offer("cuda:0").1, (f64::from(1u32 << 30) * USABLE) as u64);
        assert!(GpuPool::simulated(&[(0, 1 << 30)], &["cuda:1".into()]).is_err(), "no such device");
    }
}
