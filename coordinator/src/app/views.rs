//! What callers are shown of a job: its status, with why it waits when it is queued and no live
//! slot can hold it, and a failed job's last log lines.
use ladder_core::JobState;
use ladder_core::job::Slot;
use ladder_core::status::JobStatus;

use super::{App, logs, registry};
use crate::error::Result;
use crate::records::JobRecord;
use crate::store::Read;

/// Log lines a failed job's status carries.
pub const LOG_TAIL: usize = 8;

/// A job's status as callers see it (`slots`: the live slots, see [`App::live_slots`]).
pub fn job_status(r: &Read, job: &JobRecord, slots: &[(Slot, u64)]) -> Result<JobStatus> {
    let mut st = job.status();
    if job.state == JobState::Queued {
        st.waiting = ladder_core::placement::unplaceable(job.device, job.memory_bytes, slots);
    }
    if job.state == JobState::Failed {
        st.log_tail = logs::tail(r, job.id, LOG_TAIL)?;
    }
    Ok(st)
}

impl App {
    /// The slots of the workers heard from within three lease lengths.
    pub fn live_slots(&self, r: &Read) -> Result<Vec<(Slot, u64)>> {
        let horizon = i64::try_from(3 * self.ttl_ms()).unwrap_or(i64::MAX);
        registry::live_slots(r, self.now_ms().saturating_sub(horizon))
    }
}
