//! Must show 3 of the security issue: TLS end to end with a CA generated here. A client that
//! trusts the CA gets through; plaintext and a client trusting another CA do not; with mTLS a
//! client without a certificate is refused and one with a CA-signed certificate gets through.
use std::time::Duration;

use ladder_coordinator::{Config, Store, Tls, serve};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca = ca();
    Pki { ca_pem: ca.pem(), server: leaf(&ca, &["localhost"]), client: leaf(&ca, &["worker-1"]) }
}

async fn start(tls: Tls) -> (u16, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = CancellationToken::new();
    let cfg = Config { tls: Some(tls), ..Config::default() };
    let s = stop.clone();
    tokio::spawn(async move { serve(Store::in_memory().expect("store"), cfg, listener, s).await });
    (port, stop)
}

/// ListSweeps over `tls` (None: plaintext); Ok(number of sweeps) or the error text.
async fn list(port: u16, tls: Option<ClientTlsConfig>) -> Result<usize, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://localhost:{port}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    if let Some(t) = tls {
        ep = ep.tls_config(t).map_err(|e| e.to_string())?;
    }
    let channel = ep.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    LadderClient::new(channel)
        .list_sweeps(pb::ListSweepsRequest::default())
        .await
        .map(|r| r.into_inner().sweeps.len())
        .map_err(|s| format!("rpc: {s:?}"))
}

/// The server's TLS of `p`; with `mtls`, clients must present a certificate of its CA.
fn server_tls(p: &Pki, mtls: bool) -> Tls {
    Tls {
        cert_pem: p.server.0.clone().into_bytes(),
        key_pem: p.server.1.clone().into_bytes(),
        client_ca_pem: mtls.then(|| p.ca_pem.clone().into_bytes()),
    }
}

fn trusting(ca_pem: &str) -> ClientTlsConfig {
    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name("localhost")
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_only_clients_that_trust_its_ca() {
    let p = pki();
    let (port, stop) = start(server_tls(&p, false)).await;
    assert_eq!(list(port, Some(trusting(&p.ca_pem))).await, Ok(0));
    assert!(list(port, None).await.is_err(), "plaintext to a TLS port must fail");
    let other = pki();
    assert!(list(port, Some(trusting(&other.ca_pem))).await.is_err(), "a client trusting another CA must fail");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_refuses_a_client_without_a_certificate() {
    let p = pki();
    let (port, stop) = start(server_tls(&p, true)).await;
    let without = list(port, Some(trusting(&p.ca_pem))).await;
    assert!(without.is_err(), "no client certificate must be refused: {without:?}");
    let with = trusting(&p.ca_pem).identity(Identity::from_pem(&p.client.0, &p.client.1));
    assert_eq!(list(port, Some(with)).await, Ok(0));
    // A certificate from another CA is refused too.
    let other = pki();
    let foreign = trusting(&p.ca_pem).identity(Identity::from_pem(&other.client.0, &other.client.1));
    assert!(list(port, Some(foreign)).await.is_err());
    stop.cancel();
}
