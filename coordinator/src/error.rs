//! The one error type of `ladder-coordinator`, and the one map from it to gRPC status codes:
//! every refusal a service makes is a [`CoordError`] first.
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
    /// Uploaded bytes that do not match what their header announced.
    #[error("{0}")]
    DataLoss(String),
    /// An upload that would leave the store's disk too full.
    #[error("{0}")]
    Exhausted(String),
    /// The client's stream of an upload broke off.
    #[error("the upload broke off: {0}")]
    Stream(String),
    /// A follower of live changes fell too far behind to be told every one.
    #[error("{0}")]
    Lagged(String),
    /// A sealed target's data before the predictions are locked, or a lock that may no longer
    /// change.
    #[error("{0}")]
    Sealed(String),
    #[error("storage: {0}")]
    Storage(String),
    /// A move between job states that the state machine does not allow: a bug, never a refusal
    /// (the operation's writes are discarded).
    #[error("internal: {0}")]
    Illegal(String),
    /// Serving failed (the listener, TLS setup, the HTTP/2 server).
    #[error("server: {0}")]
    Server(String),
    #[error("shutting down")]
    Shutdown,
}

impl CoordError {
    pub fn storage(e: impl std::fmt::Display) -> Self {
        Self::Storage(e.to_string())
    }

    /// A malformed request, named by the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(DomainError::message(field, message))
    }

    /// A refusal is an answer about the request (bad input, a stale attempt, a missing record):
    /// the operation wrote nothing and the store is fine.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Storage(_) | Self::Illegal(_) | Self::Server(_) | Self::Shutdown)
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
            CoordError::DataLoss(m) => Status::data_loss(m),
            CoordError::Exhausted(m) => Status::resource_exhausted(m),
            CoordError::Stream(m) => Status::cancelled(format!("the upload broke off: {m}")),
            CoordError::Lagged(m) => Status::data_loss(m),
            CoordError::Sealed(m) => Status::failed_precondition(m),
            CoordError::Storage(m) => Status::internal(format!("storage: {m}")),
            CoordError::Illegal(m) => Status::internal(format!("internal: {m}")),
            CoordError::Server(m) => Status::internal(format!("server: {m}")),
            CoordError::Shutdown => Status::unavailable("coordinator shutting down"),
        }
    }
}

pub type Result<T, E = CoordError> = std::result::Result<T, E>;
