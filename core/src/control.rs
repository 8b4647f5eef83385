//! What a running trainer can be told on its stdin, one JSON object per line: use another number
//! of CPU threads, drop one member of a fused run (its job was fenced or cancelled), or stop at
//! the next step boundary after a checkpoint. The worker writes these lines; the trainer reads
//! them; both use this one type.
use serde::{Deserialize, Serialize};

/// One command to a running `ladder-train`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlCommand {
    /// Intra-op CPU threads from the next step on (1..=4096).
    Threads(i32),
    /// Drop member `i` (0-based) of a fused run at the next step.
    Drop(usize),
    /// Checkpoint at the next step boundary and exit as preempted.
    Stop,
}

/// Most threads a command may ask for.
pub const MAX_THREADS: i32 = 4096;

impl ControlCommand {
    /// The line the trainer reads (no newline).
    pub fn to_line(&self) -> String {
        // A plain enum of integers always encodes.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("\"stop\""))
    }

    /// Parses one line; the error names the line and what is wrong with it.
    pub fn parse(line: &str) -> Result<Self, String> {
        let c: Self = serde_json::from_str(line.trim()).map_err(|e| format!("control line {line:?}: {e}"))?;
        if let Self::Threads(t) = c
            && !(1..=MAX_THREADS).contains(&t)
        {
            return Err(format!("control line {line:?}: threads {t} is outside 1..={MAX_THREADS}"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_bad_ones_are_named() {
        for c in [ControlCommand::Threads(3), ControlCommand::Drop(1), ControlCommand::Stop] {
            assert_eq!(ControlCommand::parse(&c.to_line()), Ok(c));
        }
        assert_eq!(ControlCommand::Threads(2).to_line(), r#"{"threads":2}"#);
        assert_eq!(ControlCommand::Stop.to_line(), r#""stop""#);
        let e = ControlCommand::parse(r#"{"threads": 0}"#).expect_err("zero threads");
        assert!(e.contains("outside 1..=4096"), "{e}");
        let e = ControlCommand::parse(r#"{"thread": 2}"#).expect_err("typo");
        assert!(e.contains("unknown variant `thread`"), "{e}");
    }
}
