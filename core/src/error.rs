//! The one error type of `ladder-proto`: invalid domain input, named by key (and line, for specs).

/// What is wrong with a config or a message, and where.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A TOML document could not be parsed (the message carries line and key).
    #[error("config {path}: {message}")]
    ConfigParse { path: String, message: String },
    /// The document parsed but is not a valid job.
    #[error("invalid config: {key}: {message}")]
    InvalidConfig { key: String, message: String },
    /// A device string that is neither `cpu`, `cuda`, `cuda:N` nor `auto` (`what` says which
    /// of those it may be: a slot is `cpu` or `cuda:N` only).
    #[error("unknown device {given:?}: expected {what}")]
    UnknownDevice { given: String, what: &'static str },
    /// A sweep spec error, located by line and key.
    #[error("{origin}: line {line}: {}{message}", key_prefix(.key))]
    Spec { origin: String, line: usize, key: String, message: String },
    /// A message from the wire is missing a field or holds an impossible value.
    #[error("invalid message: {field}: {message}")]
    InvalidMessage { field: String, message: String },
    /// A file could not be read.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl DomainError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidConfig { key: key.into(), message: message.into() }
    }

    pub fn message(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidMessage { field: field.into(), message: message.into() }
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// `key: `, or nothing where no key is known.
fn key_prefix(key: &str) -> String {
    if key.is_empty() { String::new() } else { format!("{key}: ") }
}
