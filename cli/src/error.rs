//! The one error type of `ladder-cli`, and the exit code each kind of failure maps to.
use tonic::Code;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Something else failed (I/O, a server error).
    pub const FAILURE: u8 = 1;
    /// Bad input: arguments, a spec, a CSV file, a dataset.
    pub const BAD_INPUT: u8 = 2;
    /// The named sweep, job or dataset does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The coordinator refused the token.
    pub const AUTH: u8 = 4;
    /// The coordinator could not be reached.
    pub const UNREACHABLE: u8 = 5;
    /// A fit had too few usable points or did not converge.
    pub const FIT: u8 = 6;
    /// The sweep ended with failed or cancelled jobs.
    pub const JOBS_FAILED: u8 = 7;
    /// Interrupted (Ctrl-C or SIGTERM) before it finished.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "cannot reach the coordinator at {addr}: {reason} (is it running? set --coordinator or LADDER_COORDINATOR)"
    )]
    Unreachable { addr: String, reason: String },
    #[error("{0}")]
    Rpc(String, Code),
    #[error("{what}: {message}")]
    Input { what: String, message: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// A spec the coordinator refused: the message names its file, line and key.
    #[error("{0}")]
    Spec(String),
    /// A reply from the coordinator that this build cannot read.
    #[error("the coordinator sent a reply this build cannot read: {0}")]
    Reply(String),
    #[error("{0}")]
    Fit(#[from] ladder_laws::LawsError),
    #[error("{0}")]
    NoFit(String),
    #[error("{0}")]
    JobsFailed(String),
    #[error("interrupted; the sweep resumes where it stopped on the next `ladder local`")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        let msg = match s.code() {
            Code::Unauthenticated => format!("the coordinator refused the request: {}", s.message()),
            Code::PermissionDenied => format!("not allowed: {}", s.message()),
            Code::Unavailable => format!("the coordinator is unavailable: {}", s.message()),
            _ => s.message().to_string(),
        };
        CliError::Rpc(msg, s.code())
    }
}

impl From<ladder_analysis::AnalysisError> for CliError {
    fn from(e: ladder_analysis::AnalysisError) -> Self {
        match e {
            ladder_analysis::AnalysisError::Input { what, message } => CliError::Input { what, message },
            ladder_analysis::AnalysisError::NoFit(m) => CliError::NoFit(m),
            ladder_analysis::AnalysisError::Fit(f) => CliError::Fit(f),
        }
    }
}

impl From<ladder_core::DomainError> for CliError {
    fn from(e: ladder_core::DomainError) -> Self {
        CliError::Input { what: "input".into(), message: e.to_string() }
    }
}

impl CliError {
    /// A submission's refusal: a spec error (which names its file, line and key) is bad input.
    pub fn from_submit(s: tonic::Status) -> Self {
        if s.code() == Code::InvalidArgument { CliError::Spec(s.message().to_string()) } else { s.into() }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io { context: context.into(), source }
    }

    pub fn input(what: impl Into<String>, message: impl Into<String>) -> Self {
        CliError::Input { what: what.into(), message: message.into() }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Unreachable { .. } => exit::UNREACHABLE,
            CliError::Rpc(_, code) => match code {
                Code::NotFound => exit::NOT_FOUND,
                Code::Unauthenticated | Code::PermissionDenied => exit::AUTH,
                Code::Unavailable => exit::UNREACHABLE,
                Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition | Code::OutOfRange => {
                    exit::BAD_INPUT
                }
                _ => exit::FAILURE,
            },
            CliError::Input { .. } | CliError::Spec(_) => exit::BAD_INPUT,
            CliError::Fit(_) | CliError::NoFit(_) => exit::FIT,
            CliError::JobsFailed(_) => exit::JOBS_FAILED,
            CliError::Interrupted => exit::INTERRUPTED,
            CliError::Io { .. } | CliError::Reply(_) | CliError::Other(_) => exit::FAILURE,
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
