//! Who may see the page: once the coordinator has tokens, every page and every JSON or event
//! request needs a token of the admin or user role, as a `Bearer` header or the `ladder_token`
//! cookie (an EventSource cannot send headers). `/login?token=…&next=…` sets the cookie.
use axum::http::HeaderMap;

use crate::auth::{Role, Tokens};

pub const COOKIE: &str = "ladder_token";

/// The token a request carries: its Bearer header, else its cookie.
pub fn presented(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| {
        headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
            c.split(';')
                .find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_string))
        })
    })
}

/// Why a request may not see the page; None when it may.
pub fn refused(tokens: &Tokens, headers: &HeaderMap) -> Option<&'static str> {
    if tokens.is_empty() {
        return None;
    }
    match presented(headers).and_then(|t| tokens.role_of(&t)) {
        None => Some(
            "this coordinator requires a token: open the link `ladder local` printed, or send `Authorization: Bearer <token>`",
        ),
        Some(Role::Worker) => Some("a worker's token does not open the page"),
        Some(_) => None,
    }
}

/// A path of this page to go to after logging in (never another host).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}
