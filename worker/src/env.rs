//! What every attempt of one worker shares: its id, folders, trainer, the coordinator
//! connection, the cores and GPUs it divides, and the figures its /metrics reports.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use crate::cpu::CpuPool;
use crate::gpu::GpuPool;
use crate::rpc::Rpc;

/// Where and how attempts run.
#[derive(Clone)]
pub struct Env {
    pub worker_id: String,
    pub rpc: Rpc,
    pub work_dir: PathBuf,
    pub trainer: PathBuf,
    pub stats: Arc<WorkerStats>,
    /// The cores CPU attempts share.
    pub cpu: CpuPool,
    /// The GPUs' memory, and what running attempts hold of it.
    pub gpu: GpuPool,
    /// An idle slot's Acquire long-poll.
    pub acquire_wait: std::time::Duration,
}

/// What the worker's /metrics reports.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Attempts with a live (or starting) `ladder-train` child.
    pub children: AtomicI64,
    /// Events read from children and not yet acknowledged by the coordinator.
    pub backlog_events: AtomicI64,
    /// Checkpoint bytes packed and not yet uploaded.
    pub backlog_checkpoint_bytes: AtomicI64,
}

impl WorkerStats {
    /// One scrape of these, with the worker's slot count and each GPU's (device, budget,
    /// reserved, most ever reserved) bytes.
    pub fn exposition(&self, slots: usize, gpus: &[(usize, u64, u64, u64)]) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let mut e = ladder_http::Exposition::default();
        e.gauge("ladder_worker_slots", "Slots this worker runs attempts on.", slots as f64);
        e.gauge(
            "ladder_worker_children",
            "Attempts with a live ladder-train child.",
            self.children.load(Relaxed) as f64,
        );
        let backlog: [(&[(&str, &str)], f64); 2] = [
            (&[("kind", "events")], self.backlog_events.load(Relaxed) as f64),
            (&[("kind", "checkpoint_bytes")], self.backlog_checkpoint_bytes.load(Relaxed) as f64),
        ];
        e.family(
            "ladder_worker_upload_backlog",
            "Events and checkpoint bytes not yet acknowledged.",
            "gauge",
            &backlog,
        );
        let names: Vec<String> = gpus.iter().map(|g| g.0.to_string()).collect();
        let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("device", n.as_str())]).collect();
        for (name, help, k) in [
            ("ladder_worker_gpu_budget_bytes", "Device memory attempts may plan to use.", 0),
            ("ladder_worker_gpu_reserved_bytes", "Device memory the running attempts hold, by estimate.", 1),
            ("ladder_worker_gpu_reserved_peak_bytes", "The most device memory ever held at once.", 2),
        ] {
            let samples: Vec<(&[(&str, &str)], f64)> =
                labels.iter().zip(gpus).map(|(l, g)| (&l[..], [g.1, g.2, g.3][k] as f64)).collect();
            e.family(name, help, "gauge", &samples);
        }
        e.finish()
    }
}
