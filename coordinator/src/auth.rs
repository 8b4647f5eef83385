//! Bearer tokens with roles. Once any token is configured, every RPC of both services must carry
//! `authorization: Bearer <token>`: `admin` may call everything, `user` the `Ladder` service,
//! `worker` the `WorkerService` (workers cannot submit sweeps; users cannot acquire jobs or
//! write curves). Tokens are compared as SHA-256 digests against every configured token with a
//! branch-free fold, so timing reveals neither which token matched nor its length. The health
//! service is served without this check.
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use ladder_proto::auth::AUTHORIZATION;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
    Worker,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Worker => "worker",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "worker" => Ok(Role::Worker),
            _ => Err(format!("unknown role {s:?}: admin, user or worker")),
        }
    }
}

/// Who may call a service.
pub const USERS: &[Role] = &[Role::Admin, Role::User];
pub const WORKERS: &[Role] = &[Role::Admin, Role::Worker];
pub const ANY: &[Role] = &[Role::Admin, Role::User, Role::Worker];

/// Placeholders of example manifests, refused as tokens so that none is deployed by accident.
pub const PLACEHOLDERS: &[&str] =
    &["change-me", "changeme", "replace-me", "replace-with-a-secret", "ladder-token", "secret", "token", "example"];

/// Refuses a token too short to be secret or an example's placeholder.
pub fn check_token(t: &str) -> Result<(), String> {
    let t = t.trim();
    let lowered = t.to_ascii_lowercase();
    if PLACEHOLDERS.iter().any(|p| lowered.contains(p)) {
        return Err(format!("is an example's placeholder ({t:?}); generate one, e.g. `openssl rand -hex 32`"));
    }
    if t.len() < 16 {
        return Err(format!("has {} characters; use at least 16 (e.g. `openssl rand -hex 32`)", t.len()));
    }
    if t.chars().any(|c| !c.is_ascii_graphic()) {
        return Err("holds characters other than printable ASCII".into());
    }
    Ok(())
}

/// HMAC-SHA256(key, "ladder-session" | role | expiry).
fn session_mac(key: &[u8; 32], role: Role, expires_ms: i64) -> [u8; 32] {
    use hmac::Mac;
    let mut m = match hmac::Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes a key of any length.
        Err(_) => return [0; 32],
    };
    m.update(b"ladder-session\0");
    m.update(role.name().as_bytes());
    m.update(b"\0");
    m.update(&expires_ms.to_le_bytes());
    m.finalize().into_bytes().into()
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The configured tokens.
#[derive(Debug, Default)]
pub struct Tokens(Vec<([u8; 32], Role)>);

impl Tokens {
    pub fn new<'a>(list: impl IntoIterator<Item = (Role, &'a str)>) -> Self {
        Tokens(list.into_iter().map(|(r, t)| (digest(t.trim()), r)).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A session for whoever presented `token` (its role), valid until `expires_ms`: the role,
    /// the expiry and an HMAC-SHA256 of both keyed by the token's digest. It names neither the
    /// token nor lets one be derived; it dies with its expiry or with the token.
    pub fn session(&self, token: &str, expires_ms: i64) -> Option<String> {
        let role = self.role_of(token)?;
        let mac = session_mac(&digest(token.trim()), role, expires_ms);
        Some(format!("v1.{}.{expires_ms}.{}", role.name(), hex::encode(mac)))
    }

    /// The role of a session value that a configured token signed and that has not expired at
    /// `now_ms`.
    pub fn session_role(&self, value: &str, now_ms: i64) -> Option<Role> {
        let mut parts = value.splitn(4, '.');
        let (v, role, expires, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let (role, expires): (Role, i64) = (role.parse().ok()?, expires.parse().ok()?);
        let mac = hex::decode(mac).ok()?;
        if v != "v1" || expires <= now_ms || mac.len() != 32 {
            return None;
        }
        let mut found = None;
        for (key, r) in &self.0 {
            let want = session_mac(key, *r, expires);
            let diff = want.iter().zip(&mac).fold(0u8, |acc, (x, y)| acc | (x ^ y));
            if std::hint::black_box(diff) == 0 && *r == role {
                found = Some(role);
            }
        }
        found
    }

    /// The role of `presented`, comparing against every token without early exit.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let got = digest(presented.trim());
        let mut found = None;
        for (want, role) in &self.0 {
            let diff = want.iter().zip(&got).fold(0u8, |acc, (x, y)| acc | (x ^ y));
            if std::hint::black_box(diff) == 0 {
                found = Some(*role);
            }
        }
        found
    }
}

/// The check in front of one service.
#[derive(Clone)]
pub struct Auth {
    tokens: Arc<Tokens>,
    allowed: &'static [Role],
    service: &'static str,
    /// The connections yet to make an authenticated call: a call that passes marks its own.
    pending: Option<Arc<crate::listen::Unauthenticated>>,
}

impl Auth {
    pub fn new(tokens: Arc<Tokens>, service: &'static str, allowed: &'static [Role]) -> Self {
        Auth { tokens, allowed, service, pending: None }
    }

    /// A call that passes marks its connection authenticated in `list`.
    pub fn marking(mut self, list: Arc<crate::listen::Unauthenticated>) -> Self {
        self.pending = Some(list);
        self
    }

    /// Whether `req` may proceed.
    pub fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let header = req.metadata().get(AUTHORIZATION).ok_or_else(|| {
            Status::unauthenticated("this coordinator requires a token: pass --token or set LADDER_TOKEN")
        })?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))?;
        let role = self.tokens.role_of(presented).ok_or_else(|| Status::unauthenticated("invalid token"))?;
        if self.allowed.contains(&role) {
            if let (Some(list), Some(peer)) = (&self.pending, req.remote_addr()) {
                list.passed(peer);
            }
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "the {} role may not call the {} service",
                role.name(),
                self.service
            )))
        }
    }
}

impl Interceptor for Auth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.check(&req)?;
        Ok(req)
    }
}

/// The worker tokens in `path`: a file of one token per line (blank lines and `#` comments
/// skipped), or a folder of one token per file (a mounted Kubernetes Secret; names starting with
/// `.` skipped), so that each worker can be given its own.
pub fn worker_tokens(path: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    if path.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for f in names {
            let t = std::fs::read_to_string(&f)?.trim().to_string();
            if !t.is_empty() {
                out.push(t);
            }
        }
        return Ok(out);
    }
    let text = std::fs::read_to_string(path)?;
    out.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    Ok(out)
}

#[cfg(test)]
mod session_tests {
    use super::*;

    #[test]
    fn a_session_holds_its_role_until_it_expires_and_dies_with_its_token() {
        let tokens = Tokens::new([(Role::User, "user-token-0123456789"), (Role::Admin, "admin-token-0123456789")]);
        let s = tokens.session("user-token-0123456789", 1_000).expect("a session");
        assert!(!s.contains("user-token"), "{s}");
        assert_eq!(tokens.session_role(&s, 999), Some(Role::User));
        assert_eq!(tokens.session_role(&s, 1_000), None, "expired");
        assert_eq!(tokens.session_role(&s.replace("v1.user.", "v1.admin."), 999), None, "a role is not raised");
        assert_eq!(tokens.session("wrong-token-0123456789", 1_000), None);
        let rotated = Tokens::new([(Role::User, "other-token-0123456789")]);
        assert_eq!(rotated.session_role(&s, 999), None, "a session dies with its token");
    }
}
