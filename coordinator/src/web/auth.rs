//! Who may see the page: once the coordinator has tokens, every page and every JSON or event
//! request needs a token of the admin or user role as a `Bearer` header, or a session cookie
//! (an EventSource cannot send headers). `/login?token=…&next=…` checks the token, sets the
//! `ladder_session` cookie, and sends the browser on without the token in its address: the
//! cookie holds a session signed with the token ([`crate::auth::Tokens::session`]), never the
//! token, expires after [`SESSION`], and is `HttpOnly`, `SameSite=Strict`, and `Secure` under TLS.
use std::time::Duration;

use axum::http::HeaderMap;

use crate::auth::{Role, Tokens};

pub const COOKIE: &str = "ladder_session";
/// How long a session lasts.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);

/// The Bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// The session cookie of a request, if it has one.
fn session(headers: &HeaderMap) -> Option<String> {
    headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        c.split(';').find_map(|kv| kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_string))
    })
}

/// The `Set-Cookie` value of a session for `token` from `now_ms`; None for a token that is no
/// configured one.
pub fn session_cookie(tokens: &Tokens, token: &str, now_ms: i64, secure: bool) -> Option<String> {
    let ttl = i64::try_from(SESSION.as_millis()).unwrap_or(i64::MAX);
    let value = tokens.session(token, now_ms.saturating_add(ttl))?;
    let secure = if secure { "; Secure" } else { "" };
    Some(format!("{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}", SESSION.as_secs()))
}

/// Why a request may not see the page at `now_ms`; None when it may.
pub fn refused(tokens: &Tokens, headers: &HeaderMap, now_ms: i64) -> Option<&'static str> {
    if tokens.is_empty() {
        return None;
    }
    let role = match bearer(headers) {
        Some(t) => tokens.role_of(&t),
        None => session(headers).and_then(|s| tokens.session_role(&s, now_ms)),
    };
    match role {
        None => Some(
            "this coordinator requires a token: open the link `ladder local` printed, or send `Authorization: Bearer <token>`",
        ),
        Some(Role::Worker) => Some("a worker's token does not open the page"),
        Some(_) => None,
    }
}

/// A path of this page to go to after logging in, never another host: one slash and then not a
/// second (a browser reads `//host` as a host), with no backslash (read as a slash), and no
/// whitespace or control character (a browser drops tabs and newlines, so `/\t/host` is
/// `//host`). Anything else goes to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    let ok = |p: &str| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    };
    match next {
        Some(p) if ok(p) => p.to_string(),
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_host_whatever_a_browser_would_strip() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r//evil",
            "\\\\x",
            "http://evil",
            " /x",
            "/\u{0}/x",
            "/ /evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        for good in ["/", "/sweeps/demo", "/jobs/12?tab=log"] {
            assert_eq!(safe_next(Some(good)), good);
        }
        assert_eq!(safe_next(None), "/");
    }
}
