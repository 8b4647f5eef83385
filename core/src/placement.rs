//! Whether a job fits anywhere: its device request and memory estimate against the slots that
//! could run it (each a device and its memory; 0 for a CPU slot or an unknown size). The
//! coordinator says why a queued job waits; `ladder local`, whose slots are fixed, refuses a job
//! no slot can hold before it submits.
use crate::job::{DeviceRequest, Slot};

/// GiB, for messages.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Why no slot of `slots` can hold a job that asks for `device` and needs `memory_bytes` on a
/// GPU; None when one can (or when there are no slots to judge by).
pub fn unplaceable(device: DeviceRequest, memory_bytes: u64, slots: &[(Slot, u64)]) -> Option<String> {
    if slots.is_empty() {
        return None;
    }
    let matching: Vec<&(Slot, u64)> = slots.iter().filter(|(s, _)| device.fits(*s)).collect();
    if matching.is_empty() {
        let kinds: Vec<String> = slots.iter().map(|(s, _)| s.to_string()).collect();
        return Some(format!("it asks for device \"{device}\"; the slots are {}", kinds.join(", ")));
    }
    // A CPU slot, or a GPU of unknown size, may hold it.
    if matching.iter().any(|(s, m)| *s == Slot::Cpu || *m == 0 || *m >= memory_bytes) {
        return None;
    }
    let largest = matching.iter().map(|(_, m)| *m).max().unwrap_or(0);
    Some(format!(
        "it needs {:.2} GiB of device memory by estimate; the largest GPU slot has {:.2} GiB: lower train.micro_batch or the model size",
        gib(memory_bytes),
        gib(largest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_waits_only_when_no_slot_can_hold_it() {
        let any = DeviceRequest::AnyGpu;
        let gpus = [(Slot::Gpu(0), 8u64 << 30), (Slot::Gpu(1), 16 << 30)];
        assert_eq!(unplaceable(any, 12 << 30, &gpus), None, "the 16 GiB GPU holds it");
        let why = unplaceable(any, 20 << 30, &gpus).expect("too big");
        assert!(why.contains("20.00 GiB") && why.contains("16.00 GiB"), "{why}");
        // An auto job that no GPU holds still runs on a CPU slot.
        let mixed = [(Slot::Gpu(0), 8u64 << 30), (Slot::Cpu, 0)];
        assert_eq!(unplaceable(DeviceRequest::Auto, 20 << 30, &mixed), None);
        assert!(unplaceable(any, 1, &[(Slot::Cpu, 0)]).expect("no GPU").contains("\"cuda\""));
        assert_eq!(unplaceable(any, 1 << 40, &[]), None, "no slots: nothing to judge by");
        let why = unplaceable(DeviceRequest::Gpu(1), 1, &gpus[..1]).expect("GPU 1 is not there");
        assert!(why.contains("\"cuda:1\"") && why.contains("cuda:0"), "{why}");
    }
}
