//! The one error type of `ladder-laws`.

#[derive(Debug, thiserror::Error)]
pub enum LawsError {
    /// Too few usable points for the number of constants fitted.
    #[error("{law}: {got} usable points, at least {need} are needed")]
    TooFewPoints { law: crate::Law, got: usize, need: usize },
    /// A point that no law can use (non-positive or non-finite).
    #[error("{law}: point {index} has {field} = {value}, which must be finite and positive")]
    BadPoint { law: crate::Law, index: usize, field: &'static str, value: f64 },
    /// Every start of the optimiser failed.
    #[error("{law}: the optimiser found no solution: {message}")]
    NoSolution { law: crate::Law, message: String },
}

pub type Result<T, E = LawsError> = std::result::Result<T, E>;
