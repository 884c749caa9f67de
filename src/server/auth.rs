//! The gate in front of every route: ACL first (403), then HTTP Basic credentials (none: 401
//! with a realm challenge; wrong: 403), compared in constant time. It also counts requests by
//! method and gives axum's bodiless 405 a JSON body like every other error.

use super::error::Error;
use super::RequestStats;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ipnet::IpNet;
use sha1::{Digest, Sha1};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What the gate checks, built once from `[server]`.
pub struct Gate {
    pub realm: String,
    pub acl: Vec<IpNet>,
    /// SHA-1 of `username` and `password`: fixed-length values, so the comparison does not
    /// leak their lengths either.
    user_digest: [u8; 20],
    pass_digest: [u8; 20],
    counters: [AtomicU64; 5],
}

fn digest(s: &[u8]) -> [u8; 20] {
    Sha1::digest(s).into()
}

impl Gate {
    pub fn new(realm: &str, acl: &[IpNet], username: &str, password: &str) -> Gate {
        Gate {
            realm: realm.to_string(),
            acl: acl.to_vec(),
            user_digest: digest(username.as_bytes()),
            pass_digest: digest(password.as_bytes()),
            counters: Default::default(),
        }
    }

    pub fn allowed(&self, addr: &SocketAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = addr.ip().to_canonical();
        self.acl.iter().any(|net| net.contains(&ip))
    }

    /// Check an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Error> {
        let unauthorized = || Error::Unauthorized {
            realm: self.realm.clone(),
        };
        let value = authorization.ok_or_else(unauthorized)?;
        let (scheme, rest) = value.trim().split_once(' ').ok_or_else(unauthorized)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| unauthorized())?;
        let colon = decoded
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(unauthorized)?;
        let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
        let ok = digest(user).ct_eq(&self.user_digest) & digest(pass).ct_eq(&self.pass_digest);
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Error::Forbidden("Invalid credentials.".into()))
        }
    }

    fn count(&self, method: &Method) {
        let i = match *method {
            Method::GET => 0,
            Method::POST => 1,
            Method::PUT => 2,
            Method::DELETE => 3,
            _ => 4,
        };
        self.counters[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> RequestStats {
        let c = |i: usize| self.counters[i].load(Ordering::Relaxed);
        RequestStats {
            get: c(0),
            post: c(1),
            put: c(2),
            delete: c(3),
            other: c(4),
        }
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn gate(
    State(gate): State<Arc<Gate>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    gate.count(req.method());
    if !gate.allowed(&addr) {
        tracing::debug!(%addr, "refused by the ACL");
        return Error::Forbidden("Access denied by the ACL.".into()).into_response();
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = gate.check(auth) {
        return e.into_response();
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        let (parts, _) = resp.into_parts();
        let mut json = Error::MethodNotAllowed.into_response();
        if let Some(allow) = parts.headers.get(header::ALLOW) {
            json.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return json;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(
            "R",
            &["127.0.0.0/8".parse().unwrap()],
            "manager",
            "manag3rpa55word",
        )
    }

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn credentials() {
        let g = gate();
        assert!(g.check(Some(&basic("manager", "manag3rpa55word"))).is_ok());
        assert_eq!(
            g.check(Some(&basic("manager", "x"))).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            g.check(None).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            g.check(Some("Bearer abc")).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn acl_handles_mapped_v4() {
        let g = gate();
        assert!(g.allowed(&"127.0.0.1:1".parse().unwrap()));
        assert!(g.allowed(&"[::ffff:127.0.0.1]:1".parse().unwrap()));
        assert!(!g.allowed(&"10.1.2.3:1".parse().unwrap()));
    }
}
