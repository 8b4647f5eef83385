//! An attempt on the wire: the assignment a worker leases (its config checked here, once) and the
//! events it reports. A report's invalid events are refused one by one, never the whole batch.
use ladder_core::attempt::{Assignment, AttemptEvent, BranchSource};
use ladder_core::events::{MetricPoint, StopReason};
use ladder_core::job::JobConfig;
use ladder_core::{DomainError, Result};

use crate::pb;
use crate::pb::attempt_event::Kind;

impl From<&Assignment> for pb::Assignment {
    fn from(a: &Assignment) -> Self {
        pb::Assignment {
            job_id: a.job_id,
            attempt: a.attempt,
            config: Some(pb::JobConfig::from(&a.config)),
            dataset_sha256: a.dataset_sha256.clone(),
            resume_step: a.resume_step,
            lease_ttl_ms: a.lease_ttl_ms,
            memory_bytes: a.memory_bytes,
            checkpoint_steps: a.checkpoint_steps.clone(),
            branch_from: a.branch_from.as_ref().map(|b| pb::BranchSource {
                job_id: b.job_id,
                step: b.step,
                sha256: b.sha256.clone(),
            }),
        }
    }
}

impl TryFrom<&pb::Assignment> for Assignment {
    type Error = DomainError;

    fn try_from(a: &pb::Assignment) -> Result<Self> {
        Ok(Assignment {
            job_id: a.job_id,
            attempt: a.attempt,
            config: JobConfig::try_from(
                a.config.as_ref().ok_or_else(|| DomainError::message("assignment.config", "missing"))?,
            )?,
            dataset_sha256: a.dataset_sha256.clone(),
            resume_step: a.resume_step,
            lease_ttl_ms: a.lease_ttl_ms,
            memory_bytes: a.memory_bytes,
            checkpoint_steps: a.checkpoint_steps.clone(),
            branch_from: a.branch_from.as_ref().map(|b| BranchSource {
                job_id: b.job_id,
                step: b.step,
                sha256: b.sha256.clone(),
            }),
        })
    }
}

impl From<&AttemptEvent> for pb::AttemptEvent {
    fn from(e: &AttemptEvent) -> Self {
        let kind = match e {
            AttemptEvent::Started { resumed_from_step } => {
                Kind::Started(pb::AttemptStarted { resumed_from_step: *resumed_from_step })
            }
            AttemptEvent::Point(p) => Kind::Metrics(pb::MetricPoint::from(p)),
            AttemptEvent::Finished { step, reason } => {
                Kind::Finished(pb::AttemptFinished { step: *step, reason: reason.name().to_string() })
            }
            AttemptEvent::Failed { kind, message, shared_device } => Kind::Failed(pb::AttemptFailed {
                kind: pb::FailureKind::from(*kind) as i32,
                message: message.clone(),
                shared_device: *shared_device,
            }),
            AttemptEvent::Released { step } => Kind::Released(pb::AttemptReleased { step: *step }),
            AttemptEvent::Log { source, text, at_ms } => {
                Kind::Log(pb::AttemptLog { source: source.clone(), text: text.clone(), at_ms: *at_ms })
            }
        };
        pb::AttemptEvent { kind: Some(kind) }
    }
}

/// Longest failure message kept of a report.
pub const MAX_FAILURE_MESSAGE: usize = 4096;
/// Longest log line kept (characters).
pub const MAX_LOG_LINE: usize = 2000;

impl TryFrom<&pb::AttemptEvent> for AttemptEvent {
    type Error = DomainError;

    fn try_from(e: &pb::AttemptEvent) -> Result<Self> {
        Ok(match &e.kind {
            Some(Kind::Metrics(m)) => AttemptEvent::Point(MetricPoint::try_from(m)?),
            Some(Kind::Started(s)) => AttemptEvent::Started { resumed_from_step: s.resumed_from_step },
            // A reason this build does not know still finishes the attempt.
            Some(Kind::Finished(f)) => AttemptEvent::Finished {
                step: f.step,
                reason: StopReason::from_name(&f.reason).unwrap_or(StopReason::Steps),
            },
            Some(Kind::Failed(f)) => AttemptEvent::Failed {
                kind: super::failure_kind(f.kind),
                message: f.message.chars().take(MAX_FAILURE_MESSAGE).collect(),
                shared_device: f.shared_device,
            },
            Some(Kind::Released(r)) => AttemptEvent::Released { step: r.step },
            Some(Kind::Log(l)) => {
                let source = match l.source.as_str() {
                    "trainer" | "worker" => l.source.clone(),
                    other => {
                        return Err(DomainError::message(
                            "log.source",
                            format!("{other:?}: expected trainer or worker"),
                        ));
                    }
                };
                AttemptEvent::Log { source, text: l.text.chars().take(MAX_LOG_LINE).collect(), at_ms: l.at_ms }
            }
            None => return Err(DomainError::message("event", "an event without a kind")),
        })
    }
}

/// A report's events, decoded one by one.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<AttemptEvent>,
    /// Events refused as invalid (a non-finite value, say); the rest go on.
    pub refused: u32,
    /// The first refusal's reason.
    pub why: Option<String>,
}

/// Decodes a report's events; an invalid one is left out and counted.
pub fn decode_events(evs: &[pb::AttemptEvent]) -> Decoded {
    let mut out = Decoded { events: Vec::with_capacity(evs.len()), ..Default::default() };
    for ev in evs {
        match AttemptEvent::try_from(ev) {
            Ok(e) => out.events.push(e),
            Err(e) => {
                out.refused += 1;
                out.why.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}
