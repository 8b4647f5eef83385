//! The one error type of `ladder-analysis`.

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// An option or a prediction request that cannot be honoured, named by `what`.
    #[error("{what}: {message}")]
    Input { what: String, message: String },
    /// Too few usable points for any fit, or for a law that was required.
    #[error("{0}")]
    NoFit(String),
    #[error(transparent)]
    Fit(#[from] ladder_laws::LawsError),
}

impl AnalysisError {
    pub fn input(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input { what: what.into(), message: message.into() }
    }
}

pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;
