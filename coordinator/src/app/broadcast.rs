//! What the application announces as it happens: each job change (to `WatchJobs`, the page and
//! the live fits) and each batch of points stored (to the page). A job that became queued wakes
//! one waiting Acquire.
use std::sync::Arc;

use ladder_core::attempt::AttemptEvent;
use ladder_core::status::{JobStatus, RecordedPoint};
use tokio::sync::broadcast;

use super::App;
use crate::clock::{Clock, SystemClock};
use crate::records::{JobRecord, JobState};

/// Points of one report, just stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredPoints {
    pub sweep_id: u64,
    pub job_id: u64,
    pub points: Vec<RecordedPoint>,
    /// Wall-clock milliseconds at the commit.
    pub stored_ms: i64,
}

impl App {
    /// Announces jobs that changed: their sweep's fits are due, watchers hear of them, and each
    /// that became queued wakes one waiting Acquire (not every idle long-poll).
    pub(crate) fn publish(&self, jobs: &[JobRecord]) {
        for j in jobs {
            if j.state.is_final() {
                // Retention may have doomed its checkpoints (and its parent's).
                self.files_doomed();
                self.fits.job_ended(j.sweep_id);
            } else {
                self.fits.mark(j.sweep_id);
            }
            let _ = self.updates.send(j.status());
        }
        for _ in jobs.iter().filter(|j| j.state == JobState::Queued) {
            self.idle.queue_changed();
            self.work.notify_one();
        }
    }

    /// Announces a lease (a job that went from queued to running).
    pub(crate) fn leased(&self, job: &JobRecord) {
        let _ = self.updates.send(job.status());
    }

    /// Job changes as they happen.
    pub fn subscribe_jobs(&self) -> broadcast::Receiver<JobStatus> {
        self.updates.subscribe()
    }

    /// Points as they are stored.
    pub fn subscribe_points(&self) -> broadcast::Receiver<Arc<StoredPoints>> {
        self.points.subscribe()
    }

    /// Announces points just stored (when anyone listens; never a sealed target's), adds them to
    /// the job's curve summary (one that restarted from an earlier step is summarised anew), and
    /// marks their sweep's fits due.
    pub(crate) fn stored(&self, job: &JobRecord, attempt: u32, events: &[AttemptEvent]) {
        let (sweep_id, job_id) = (job.sweep_id, job.id);
        self.fits.mark(sweep_id);
        if events.iter().any(|e| matches!(e, AttemptEvent::Started { .. })) {
            self.fits.summaries.forget(job_id);
        }
        let points: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                AttemptEvent::Point(p) => Some(RecordedPoint { point: p.clone(), attempt }),
                _ => None,
            })
            .collect();
        self.fits.summaries.push(job_id, &points);
        if job.sealed || self.points.receiver_count() == 0 {
            return;
        }
        if !points.is_empty() {
            let stored_ms = SystemClock.now_ms();
            let _ = self.points.send(Arc::new(StoredPoints { sweep_id, job_id, points, stored_ms }));
        }
    }
}
