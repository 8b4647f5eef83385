//! Connecting to the coordinator: an eager connect, so an unreachable address is reported at
//! once and plainly, and a bearer token on every request.
use std::error::Error as _;
use std::time::Duration;

use ladder_proto::auth::{AuthChannel, Bearer};
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::tls::ClientTls;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

use crate::error::{CliError, Result};

pub type Client = LadderClient<AuthChannel>;

/// Largest message accepted (the coordinator's chunks are 1 MiB; curves can be larger).
const MAX_MESSAGE: usize = 64 << 20;

/// Connects to `addr` (`http://host:port`; a bare `host:port` is taken as http).
pub async fn connect(addr: &str, token: Option<&str>, tls: &ClientTls) -> Result<Client> {
    let url = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| CliError::input("--coordinator", format!("{addr:?} is not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(10)));
    let endpoint = match tls.config(url.starts_with("https://"))? {
        Some(t) => endpoint.tls_config(t).map_err(|e| CliError::input("TLS", e.to_string()))?,
        None => endpoint,
    };
    let channel = endpoint.connect().await.map_err(|e| {
        // The transport error's own text is generic; its innermost cause says what happened.
        let mut reason = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        CliError::Unreachable { addr: url.clone(), reason }
    })?;
    let bearer = Bearer::new(token)?;
    Ok(LadderClient::new(InterceptedService::new(channel, bearer))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}
