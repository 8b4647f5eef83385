//! The one error type of `ladder-worker`.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("coordinator: {0}")]
    Rpc(#[from] tonic::Status),
    #[error("connecting to the coordinator: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Corrupt(String),
    #[error("no coordinator answered at {address} within {secs} s (last error: {last})")]
    Unreachable { address: String, secs: f64, last: String },
    #[error(transparent)]
    Domain(#[from] ladder_core::DomainError),
}

impl WorkerError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}

pub type Result<T, E = WorkerError> = std::result::Result<T, E>;
