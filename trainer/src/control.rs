//! What a running attempt can be told, and the state the loop reads between steps: stop at the
//! next step (SIGTERM, or [`ControlCommand::Stop`]), use another number of CPU threads, or drop
//! one member of a fused run (its job was fenced or cancelled). The worker sends
//! [`ControlCommand`]s as JSON lines on the trainer's stdin (`--control stdin`).
use std::io::BufRead;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use ladder_core::control::ControlCommand;

/// Shared between the training loop and whoever controls it. The loop reads it between steps.
#[derive(Debug, Default)]
pub struct Controls {
    /// Checkpoint at the next step boundary and return `Preempted` (shared with the SIGTERM handler).
    pub stop: Arc<AtomicBool>,
    /// Intra-op CPU threads wanted from the next step on; 0 leaves them as they are.
    pub threads: AtomicI32,
    /// Members of a fused run to drop at the next step, by index.
    dropped: Mutex<Vec<usize>>,
}

impl Controls {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Asks the loop to drop member `i` of a fused run.
    pub fn drop_member(&self, i: usize) {
        if let Ok(mut d) = self.dropped.lock() {
            d.push(i);
        }
    }

    /// Members to drop since the last call.
    pub fn take_dropped(&self) -> Vec<usize> {
        self.dropped.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }

    /// Applies one command.
    pub fn apply(&self, c: ControlCommand) {
        match c {
            ControlCommand::Threads(t) => self.threads.store(t, Ordering::SeqCst),
            ControlCommand::Drop(i) => self.drop_member(i),
            ControlCommand::Stop => self.stop.store(true, Ordering::SeqCst),
        }
    }

    /// Applies one command line; an unreadable line is refused with the reason.
    pub fn apply_line(&self, line: &str) -> Result<(), String> {
        self.apply(ControlCommand::parse(line)?);
        Ok(())
    }

    /// Sets libtorch's intra-op threads if a new count was asked for; returns it when changed.
    pub fn apply_threads(&self, current: &mut i32) -> Option<i32> {
        let want = self.threads.load(Ordering::SeqCst);
        (want > 0 && want != *current).then(|| {
            tch::set_num_threads(want);
            *current = want;
            want
        })
    }

    /// Reads command lines from stdin on a thread of its own until EOF. Bad lines are reported on
    /// stderr and skipped: a control channel never stops training.
    pub fn listen_stdin(self: &Arc<Self>) -> std::io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new().name("ladder-control".into()).spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { return };
                if line.trim().is_empty() {
                    continue;
                }
                if let Err(e) = me.apply_line(&line) {
                    eprintln!("ladder-train: {e}");
                }
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_bad_ones_are_named() {
        let c = Controls::default();
        c.apply_line(&ControlCommand::Threads(3).to_line()).expect("threads");
        c.apply_line(&ControlCommand::Drop(1).to_line()).expect("drop");
        assert_eq!(c.threads.load(Ordering::SeqCst), 3);
        assert_eq!(c.take_dropped(), vec![1]);
        assert!(c.take_dropped().is_empty());
        assert!(!c.stopped());
        c.apply_line(&ControlCommand::Stop.to_line()).expect("stop");
        assert!(c.stopped());
        let e = c.apply_line(r#"{"threads": 0}"#).expect_err("zero threads");
        assert!(e.contains("outside 1..=4096"), "{e}");
        let e = c.apply_line("{\"thread\": 2}").expect_err("typo");
        assert!(e.contains("unknown variant `thread`"), "{e}");
    }
}
