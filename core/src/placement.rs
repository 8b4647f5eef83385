//! Whether a job fits anywhere: its device request and memory estimate against the slots that
//! could run it (each a device and its memory; 0 for a CPU slot or an unknown size). The
//! coordinator says why a queued job waits; `ladder local`, whose slots are fixed, refuses a job
//! no slot can hold before it submits.

/// Whether a job with device request `want` may run on `slot`.
pub fn slot_fits_device(want: &str, slot: &str) -> bool {
    match want.trim() {
        "cpu" => slot.trim() == "cpu",
        "cuda" => slot.trim().starts_with("cuda"),
        "auto" | "" => true,
        exact => exact == slot.trim(),
    }
}

/// GiB, for messages.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Why no slot of `slots` can hold a job that asks for `device` and needs `memory_bytes` on a
/// GPU; None when one can (or when there are no slots to judge by).
pub fn unplaceable(device: &str, memory_bytes: u64, slots: &[(String, u64)]) -> Option<String> {
    if slots.is_empty() {
        return None;
    }
    let matching: Vec<&(String, u64)> = slots.iter().filter(|(s, _)| slot_fits_device(device, s)).collect();
    if matching.is_empty() {
        let kinds: Vec<&str> = slots.iter().map(|(s, _)| s.as_str()).collect();
        return Some(format!("it asks for device {device:?}; the slots are {}", kinds.join(", ")));
    }
    // A CPU slot, or a GPU of unknown size, may hold it.
    if matching.iter().any(|(s, m)| s.trim() == "cpu" || *m == 0 || *m >= memory_bytes) {
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
        let gpus = [("cuda:0".to_string(), 8u64 << 30), ("cuda:1".to_string(), 16 << 30)];
        assert_eq!(unplaceable("cuda", 12 << 30, &gpus), None, "the 16 GiB GPU holds it");
        let why = unplaceable("cuda", 20 << 30, &gpus).expect("too big");
        assert!(why.contains("20.00 GiB") && why.contains("16.00 GiB"), "{why}");
        // An auto job that no GPU holds still runs on a CPU slot.
        let mixed = [("cuda:0".to_string(), 8u64 << 30), ("cpu".to_string(), 0)];
        assert_eq!(unplaceable("auto", 20 << 30, &mixed), None);
        assert!(unplaceable("cuda", 1, &[("cpu".to_string(), 0)]).expect("no GPU").contains("\"cuda\""));
        assert_eq!(unplaceable("cuda", 1 << 40, &[]), None, "no slots: nothing to judge by");
        assert!(slot_fits_device("cuda:1", " cuda:1 ") && !slot_fits_device("cuda:1", "cuda:0"));
    }
}
