//! The one error type of `ladder-trainer`; every variant names what is wrong and where.
use std::path::PathBuf;

use ladder_core::DomainError;

/// Everything that can go wrong while preparing data or training one attempt.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// The job config is unparsable or invalid, or names an unknown device.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A CUDA device was asked for but none is usable.
    #[error("device {0} requested but CUDA is not available on this machine")]
    DeviceUnavailable(String),
    /// A token file or corpus is unusable.
    #[error("data {path}: {message}")]
    Data { path: PathBuf, message: String },
    /// A token id outside the vocabulary.
    #[error("data {path}: token id {id} at position {position} is out of range for vocab {vocab}")]
    TokenOutOfRange { path: PathBuf, id: u32, position: usize, vocab: i64 },
    /// A tokenizer failed (unknown name, undecodable ids).
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A checkpoint is missing, corrupt, truncated or from another job.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    /// libtorch raised an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// JSON (de)serialisation failed.
    #[error("{context}: {source}")]
    Json { context: String, source: serde_json::Error },
}

impl TrainerError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Domain(DomainError::invalid(key, message))
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Checkpoint { path: path.into(), message: message.into() }
    }

    pub(crate) fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Data { path: path.into(), message: message.into() }
    }

    /// True when libtorch ran out of device memory.
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, Self::Torch(e) if e.to_string().contains("out of memory"))
    }

    /// True when the input (config, data, checkpoint) is at fault rather than the machine.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Domain(_)
                | Self::Data { .. }
                | Self::TokenOutOfRange { .. }
                | Self::Tokenizer(_)
                | Self::Checkpoint { .. }
        )
    }
}

pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
