//! The one error type of `ladder-coordinator`, and its single mapping to gRPC status codes.
use ladder_core::DomainError;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The request is malformed or names impossible values.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A write from an attempt that is no longer current.
    #[error("stale attempt: {0}")]
    Stale(String),
    /// A checkpoint ahead of the curve stored before it.
    #[error("{0}")]
    Ahead(String),
    /// A caller acting for a worker it did not register.
    #[error("{0}")]
    Forbidden(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("shutting down")]
    Shutdown,
}

impl CoordError {
    pub fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for CoordError {
            fn from(e: $t) -> Self {
                Self::storage(e)
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

impl From<CoordError> for Status {
    fn from(e: CoordError) -> Self {
        match e {
            CoordError::Invalid(d) => Status::invalid_argument(d.to_string()),
            CoordError::NotFound(m) => Status::not_found(m),
            CoordError::AlreadyExists(m) => Status::already_exists(m),
            CoordError::Stale(m) => Status::failed_precondition(format!("stale attempt: {m}")),
            CoordError::Ahead(m) => Status::aborted(m),
            CoordError::Forbidden(m) => Status::permission_denied(m),
            CoordError::Storage(m) => Status::internal(format!("storage: {m}")),
            CoordError::Shutdown => Status::unavailable("coordinator shutting down"),
        }
    }
}

pub type Result<T, E = CoordError> = std::result::Result<T, E>;
