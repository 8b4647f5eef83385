//! The one function that changes a job's state ([`set_state`]), and the moves it allows:
//!
//! ```text
//! (new) ─▶ Queued ─▶ Running ─▶ Succeeded
//!   │        ▲  │       │  ├──▶ Failed
//!   │        │  │       │  └──▶ Cancelled
//!   │        │  │       └─────▶ Queued (retried, or released)
//!   │        │  └─────────────▶ Cancelled
//!   └──▶ Pending ─▶ Queued | Failed | Cancelled
//! ```
//!
//! A final state never changes again. The queue index follows the state here: a job enters
//! the queue exactly when it becomes `Queued` and leaves it when it stops being so; the counts
//! and the open set follow when the record is saved ([`crate::records::JobRecord::save`]).
use redb::WriteTransaction;

use crate::error::{CoordError, Result};
use crate::records::{JobRecord, JobState};
use crate::tables::QUEUE;

/// Whether a job may move from `from` (None: a job being created) to `to`.
pub fn allowed(from: Option<JobState>, to: JobState) -> bool {
    use JobState::*;
    match from {
        None => matches!(to, Queued | Pending),
        Some(Queued) => matches!(to, Running | Cancelled),
        Some(Running) => matches!(to, Queued | Succeeded | Failed | Cancelled),
        Some(Pending) => matches!(to, Queued | Failed | Cancelled),
        Some(Succeeded | Failed | Cancelled) => false,
    }
}

/// Moves `job` to `to`, keeping the queue index in step; refuses a move [`allowed`] does not
/// permit (a bug: the operation's writes are discarded, the store is untouched).
pub fn set_state(txn: &WriteTransaction, job: &mut JobRecord, to: JobState) -> Result<()> {
    let from = job.loaded_state.map(|_| job.state);
    if !allowed(from, to) {
        let from = from.map_or("new", JobState::name);
        return Err(CoordError::Illegal(format!("job {}: {from} → {} is not a move a job makes", job.id, to.name())));
    }
    let mut queue = txn.open_table(QUEUE)?;
    if from == Some(JobState::Queued) {
        queue.remove((job.rank(), job.id))?;
    }
    if to == JobState::Queued {
        queue.insert((job.rank(), job.id), ())?;
    }
    job.state = to;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::STATES;

    /// Every pair of states: exactly the moves of the diagram at the top of this module.
    #[test]
    fn every_pair_of_states_is_allowed_or_refused_as_the_diagram_says() {
        use JobState::*;
        let moves = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Queued),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Cancelled),
            (Pending, Queued),
            (Pending, Failed),
            (Pending, Cancelled),
        ];
        for from in STATES {
            for to in STATES {
                assert_eq!(allowed(Some(from), to), moves.contains(&(from, to)), "{from:?} → {to:?}");
            }
        }
        for to in STATES {
            assert_eq!(allowed(None, to), matches!(to, Queued | Pending), "new → {to:?}");
        }
    }
}
