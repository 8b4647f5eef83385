//! Client-side TLS (rustls): the CA that signs the coordinator's certificate and, for mTLS, this
//! client's own certificate and key, all PEM files.
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use ladder_core::DomainError;

#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the URL's host).
    pub domain: Option<String>,
}

fn read(what: &str, p: &Path) -> Result<Vec<u8>, DomainError> {
    std::fs::read(p).map_err(|e| DomainError::message(what, format!("{}: {e}", p.display())))
}

impl ClientTls {
    /// None when no TLS option is set (plaintext, unless the URL is https). A TLS option with
    /// an http:// address is refused: the connection would be plaintext, the token in clear.
    pub fn config(&self, https: bool) -> Result<Option<ClientTlsConfig>, DomainError> {
        let any = self.ca.is_some() || self.cert.is_some() || self.key.is_some();
        if !https && !any {
            return Ok(None);
        }
        if !https {
            return Err(DomainError::message(
                "--tls-ca/--tls-cert",
                "TLS options need an https:// coordinator address; with http:// the connection, and its token, would be plaintext",
            ));
        }
        let mut cfg = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            cfg = cfg.ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?));
        }
        match (&self.cert, &self.key) {
            (Some(c), Some(k)) => cfg = cfg.identity(Identity::from_pem(read("--tls-cert", c)?, read("--tls-key", k)?)),
            (None, None) => {}
            _ => return Err(DomainError::message("--tls-cert/--tls-key", "give both, or neither")),
        }
        if let Some(d) = &self.domain {
            cfg = cfg.domain_name(d.clone());
        }
        Ok(Some(cfg))
    }
}
