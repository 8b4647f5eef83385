//! The live page the coordinator serves over HTTP(S) on its own address (`--http-listen`): the
//! sweeps, a sweep (its jobs, curves coloured by N, B_simple, the CBS, the fits with their bands),
//! a job (its curve and log), kept current by server-sent events. The same tokens and TLS as
//! the gRPC port guard it.
//!
//! - [`assets`]: the embedded HTML, scripts and uPlot;
//! - [`auth`]: tokens from a Bearer header or the `ladder_token` cookie;
//! - [`api`]: the JSON the page reads;
//! - [`events`]: the event streams.
pub mod api;
pub mod assets;
pub mod auth;
pub mod events;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::auth::Tokens;
use crate::error::CoordError;

/// What the page's handlers share.
#[derive(Clone)]
pub struct Web {
    pub app: App,
    pub tokens: Arc<Tokens>,
    pub shutdown: CancellationToken,
}

/// Connections the page may hold: a laptop's tabs, each with an event stream, and its fetches.
pub const LIMITS: ladder_http::Limits = ladder_http::Limits {
    max_connections: 256,
    head_timeout: Duration::from_secs(10),
    deadline: None,
    keep_alive: true,
};

/// Serves the page on `listener` (TLS when `tls` is given) until `shutdown`.
pub async fn serve(web: Web, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    let shutdown = web.shutdown.clone();
    ladder_http::serve_tls(listener, router(web), LIMITS, tls, shutdown).await;
}

/// Every route of the page.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/sweeps/{name}", get(sweep_page))
        .route("/jobs/{id}", get(job_page))
        .route("/login", get(login))
        .route("/assets/{name}", get(asset))
        .route("/api/sweeps", get(api_sweeps))
        .route("/api/sweeps/{name}", get(api_sweep))
        .route("/api/sweeps/{name}/curves", get(api_curves))
        .route("/api/sweeps/{name}/fits", get(api_fits))
        .route("/api/sweeps/{name}/predictions", get(api_predictions))
        .route("/api/sweeps/{name}/events", get(api_sweep_events))
        .route("/api/jobs/{id}", get(api_job))
        .route("/api/jobs/{id}/log", get(api_log))
        .route("/api/jobs/{id}/events", get(api_job_events))
        .fallback(not_found)
        .with_state(web)
}

fn html(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ladder: {t}</title>\
             <link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><nav class=\"top\">\
             <a href=\"/\" class=\"brand\">ladder</a></nav><main><h1>{t}</h1><p>{m}</p></main></body></html>",
            t = esc(title),
            m = esc(text)
        ),
    )
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_result(r: crate::error::Result<serde_json::Value>) -> Response {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(api::status_of(&e), &json!({ "error": e.to_string() })),
    }
}

/// The 401 of a page or of its JSON.
fn unauthorized(api: bool, why: &str) -> Response {
    if api {
        json_response(StatusCode::UNAUTHORIZED, &json!({ "error": why }))
    } else {
        message_page(StatusCode::UNAUTHORIZED, "A token is needed", why)
    }
}

macro_rules! guard {
    ($w:expr, $headers:expr, $api:expr) => {
        if let Some(why) = auth::refused(&$w.tokens, &$headers, $w.app.cfg.clock.now_ms()) {
            return unauthorized($api, why);
        }
    };
}

async fn page(State(w): State<Web>, headers: HeaderMap) -> Response {
    guard!(w, headers, false);
    html(StatusCode::OK, assets::INDEX)
}

async fn sweep_page(State(w): State<Web>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    guard!(w, headers, false);
    match w.exists(Some(name.clone()), None).await {
        Ok(true) => html(StatusCode::OK, assets::INDEX),
        Ok(false) => {
            message_page(StatusCode::NOT_FOUND, "No such sweep", &format!("There is no sweep named {name:?}."))
        }
        Err(e) => message_page(api::status_of(&e), "Error", &e.to_string()),
    }
}

async fn job_page(State(w): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    guard!(w, headers, false);
    let Ok(id) = id.parse::<u64>() else {
        return message_page(StatusCode::NOT_FOUND, "No such job", &format!("{id:?} is not a job id."));
    };
    match w.exists(None, Some(id)).await {
        Ok(true) => html(StatusCode::OK, assets::INDEX),
        Ok(false) => message_page(StatusCode::NOT_FOUND, "No such job", &format!("There is no job {id}.")),
        Err(e) => message_page(api::status_of(&e), "Error", &e.to_string()),
    }
}

/// `/login?token=…&next=/sweeps/x`: checks the token, sets the cookie, and goes on.
async fn login(State(w): State<Web>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let token = param(&q, "token").unwrap_or_default();
    if !w.tokens.is_empty() && !matches!(w.tokens.role_of(&token), Some(r) if r != crate::auth::Role::Worker) {
        return unauthorized(false, "the token in this link is not one of this coordinator's");
    }
    let next = auth::safe_next(param(&q, "next").as_deref());
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&next) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    // Without tokens there is nothing to sign: no cookie.
    let cookie = auth::session_cookie(&w.tokens, &token, w.app.cfg.clock.now_ms(), w.app.cfg.tls.is_some());
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// The value of `key` in a query string, percent-decoded.
fn param(q: &str, key: &str) -> Option<String> {
    q.split('&').find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('='))).map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::asset(&name) {
        Some((ctype, bytes)) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            r
        }
        None => message_page(StatusCode::NOT_FOUND, "Not found", &format!("No asset {name:?}.")),
    }
}

async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let _ = headers;
    if uri.path().starts_with("/api/") {
        return json_response(StatusCode::NOT_FOUND, &json!({ "error": format!("no such resource: {}", uri.path()) }));
    }
    message_page(StatusCode::NOT_FOUND, "Not found", &format!("Nothing lives at {}.", uri.path()))
}

async fn api_sweeps(State(w): State<Web>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    guard!(w, headers, true);
    let q = q.unwrap_or_default();
    let before = param(&q, "before").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = param(&q, "limit").and_then(|v| v.parse().ok()).unwrap_or(0);
    json_result(w.sweeps(before, limit).await)
}

async fn api_sweep(State(w): State<Web>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    guard!(w, headers, true);
    json_result(w.sweep(name).await)
}

/// `?max_points=N`: the most points per curve the page asks for, if it asks.
fn asked_points(q: &Option<String>) -> Option<usize> {
    param(q.as_deref().unwrap_or_default(), "max_points").and_then(|v| v.parse().ok())
}

fn max_points(q: &Option<String>) -> usize {
    api::max_points(asked_points(q))
}

async fn api_curves(
    State(w): State<Web>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    guard!(w, headers, true);
    match w.curves(name, asked_points(&q)).await {
        Ok(rx) => {
            let body = tokio_stream::wrappers::ReceiverStream::new(rx)
                .map(|part| part.map(axum::body::Bytes::from).map_err(std::io::Error::other));
            let mut r = (StatusCode::OK, axum::body::Body::from_stream(body)).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => json_response(api::status_of(&e), &json!({ "error": e.to_string() })),
    }
}

async fn api_fits(State(w): State<Web>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    guard!(w, headers, true);
    json_result(w.fits(name).await)
}

async fn api_predictions(State(w): State<Web>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    guard!(w, headers, true);
    json_result(w.predictions(name).await)
}

fn job_id(id: &str) -> Result<u64, Box<Response>> {
    id.parse().map_err(|_| {
        Box::new(json_response(StatusCode::NOT_FOUND, &json!({ "error": format!("{id:?} is not a job id") })))
    })
}

async fn api_job(State(w): State<Web>, headers: HeaderMap, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    guard!(w, headers, true);
    match job_id(&id) {
        Ok(id) => json_result(w.job(id, max_points(&q)).await),
        Err(r) => *r,
    }
}

async fn api_log(State(w): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    guard!(w, headers, true);
    match job_id(&id) {
        Ok(id) => json_result(w.log(id).await),
        Err(r) => *r,
    }
}

async fn api_sweep_events(State(w): State<Web>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    guard!(w, headers, true);
    let found = w.read_sweep_id(name).await;
    match found {
        Ok(id) => events::stream(&w, events::Follow::Sweep(id)),
        Err(e) => json_response(api::status_of(&e), &json!({ "error": e.to_string() })),
    }
}

async fn api_job_events(State(w): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    guard!(w, headers, true);
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match w.exists(None, Some(id)).await {
        Ok(true) => events::stream(&w, events::Follow::Job(id)),
        Ok(false) => json_response(StatusCode::NOT_FOUND, &json!({ "error": format!("no job {id}") })),
        Err(e) => json_response(api::status_of(&e), &json!({ "error": e.to_string() })),
    }
}

/// The page's TLS from the coordinator's: the same certificate as the gRPC port, and with a
/// client CA the same mTLS (a browser then presents a certificate that chains to it).
pub fn tls_config(tls: &crate::app::Tls) -> crate::error::Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: String| CoordError::Server(format!("TLS {what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| bad("key", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CoordError::Server(format!("TLS: {e}")))?;
    let builder = match &tls.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                roots
                    .add(c.map_err(|e| bad("client CA", e.to_string()))?)
                    .map_err(|e| bad("client CA", e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad("client CA", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let cfg = builder.with_single_cert(certs, key).map_err(|e| CoordError::Server(format!("TLS: {e}")))?;
    Ok(Arc::new(cfg))
}
