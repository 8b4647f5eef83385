//! When a call to the coordinator is tried again. Each error is classed by what it says about
//! the coordinator ([`WorkerError::retry_class`]): away (unavailable, or its disk full: retried
//! for as long as it takes, until the caller stops), a passing fault (retried a few times), or
//! final.
use std::time::Duration;

use backon::BackoffBuilder;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::error::{Result, WorkerError};

/// Retries of a passing fault before it is taken as final.
pub const PASSING_RETRIES: usize = 6;

/// What an error says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// The coordinator is away or restarting.
    Away,
    /// Maybe a passing fault: an internal error, or a local file operation.
    Passing,
    Final,
}

impl WorkerError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            WorkerError::Rpc(s) => match s.code() {
                // The coordinator's disk is nearly full: it goes on once space is freed.
                Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded | Code::ResourceExhausted => {
                    RetryClass::Away
                }
                Code::Internal | Code::Unknown => RetryClass::Passing,
                _ => RetryClass::Final,
            },
            WorkerError::Connect(_) => RetryClass::Away,
            WorkerError::Io { .. } => RetryClass::Passing,
            WorkerError::Corrupt(_) | WorkerError::Unreachable { .. } | WorkerError::Domain(_) => RetryClass::Final,
        }
    }

    /// The coordinator does not know this worker's id (it registered with another store).
    pub fn is_unknown_worker(&self) -> bool {
        matches!(self, WorkerError::Rpc(s) if s.code() == Code::NotFound && s.message().contains("is registered"))
    }

    /// The coordinator says this attempt is no longer current.
    pub fn is_fenced(&self) -> bool {
        matches!(self, WorkerError::Rpc(s) if s.code() == Code::FailedPrecondition)
    }
}

/// The delays between retries: 100 ms doubling to 3 s, with jitter.
pub fn backoff() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(3))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `f` until it succeeds: an away coordinator is waited for until `stop` (then None), a
/// passing fault retried up to [`PASSING_RETRIES`] times; any other error is returned at once.
pub async fn retry<T, F, Fut>(stop: &CancellationToken, mut f: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delays = backoff();
    let mut passing_left = PASSING_RETRIES;
    loop {
        let e = match f().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => e,
        };
        match e.retry_class() {
            RetryClass::Away => {}
            RetryClass::Passing if passing_left > 0 => passing_left -= 1,
            _ => return Err(e),
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(3));
        tracing::debug!("coordinator: {e}; retrying in {delay:?}");
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn internal_errors_are_retried_a_bounded_number_of_times() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let out: Result<Option<()>> = retry(&CancellationToken::new(), || {
            c.fetch_add(1, Ordering::SeqCst);
            async { Err(WorkerError::Rpc(tonic::Status::internal("storage: disk"))) }
        })
        .await;
        assert!(matches!(out, Err(WorkerError::Rpc(ref s)) if s.code() == Code::Internal), "{out:?}");
        assert_eq!(calls.load(Ordering::SeqCst), PASSING_RETRIES + 1, "the first try and six more");
        // An away coordinator is waited for until the caller stops.
        let stop = CancellationToken::new();
        let (s, c) = (stop.clone(), Arc::new(AtomicUsize::new(0)));
        let c2 = c.clone();
        let out: Result<Option<()>> = retry(&stop, || {
            if c2.fetch_add(1, Ordering::SeqCst) == 50 {
                s.cancel();
            }
            async { Err(WorkerError::Rpc(tonic::Status::unavailable("restarting"))) }
        })
        .await;
        assert!(matches!(out, Ok(None)), "{out:?}");
        assert!(c.load(Ordering::SeqCst) > PASSING_RETRIES, "far more than a passing fault's retries");
        // Refusals are final at once.
        let out: Result<Option<()>> =
            retry(&CancellationToken::new(), || async { Err(WorkerError::Rpc(tonic::Status::invalid_argument("no"))) })
                .await;
        assert!(out.is_err());
    }
}
