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

/// GET / of the page at `port` over TLS trusting `p`'s CA, presenting `client` (cert, key) if
/// given: the status line, or why the handshake failed.
async fn page_over_tls(port: u16, p: &Pki, client: Option<&(String, String)>) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(p.ca_pem.as_bytes()).expect("ca")).expect("root");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
    };
    let sock = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, sock)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await.map_err(|e| format!("read: {e}"))?;
    Ok(out.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_covers_the_page_too() {
    let p = pki();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = web.local_addr().expect("addr").port();
    let stop = CancellationToken::new();
    let cfg = Config { tls: Some(server_tls(&p, true)), ..Config::default() };
    let s = stop.clone();
    tokio::spawn(async move {
        let listeners = ladder_coordinator::Listeners { grpc, metrics: None, web: Some(web) };
        ladder_coordinator::serve_all(Store::in_memory().expect("store"), cfg, listeners, s).await
    });
    let without = page_over_tls(port, &p, None).await;
    assert!(
        without.as_ref().map_or(true, |l| !l.contains("200")),
        "a browser without a certificate got the page: {without:?}"
    );
    assert_eq!(page_over_tls(port, &p, Some(&p.client)).await.as_deref(), Ok("HTTP/1.1 200 OK"));
    let other = pki();
    let foreign = page_over_tls(port, &p, Some(&other.client)).await;
    assert!(
        foreign.as_ref().map_or(true, |l| !l.contains("200")),
        "another CA's certificate got the page: {foreign:?}"
    );
    stop.cancel();
}
