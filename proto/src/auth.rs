//! Bearer tokens on the client side: every request carries `authorization: Bearer <token>` when
//! a token is configured. The coordinator checks it (see `ladder-coordinator`'s `auth`).
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use ladder_core::DomainError;

/// The metadata key that carries the token.
pub const AUTHORIZATION: &str = "authorization";

/// Adds the bearer token, if any, to every request.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// `None` or an empty token sends no header.
    pub fn new(token: Option<&str>) -> Result<Self, DomainError> {
        match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(Bearer(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| Bearer(Some(v)))
                .map_err(|_| DomainError::message("token", "must be printable ASCII")),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(AUTHORIZATION, v.clone());
        }
        Ok(req)
    }
}

/// A channel whose requests carry the token.
pub type AuthChannel = InterceptedService<Channel, Bearer>;
