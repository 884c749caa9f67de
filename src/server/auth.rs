//! The gate in front of every route: ACL first (403), then HTTP Basic credentials (none: 401
//! with a realm challenge; wrong: 403), compared in constant time. It also counts requests by
//! method and gives axum's bodiless 405 a JSON body like every other error.
//!
//! Lockout: after `auth_fail_limit` failed authentications (credentials sent but wrong or
//! malformed; a bare request without credentials is the normal 401 challenge and does not
//! count) from one address within `auth_fail_window`, that address gets 403 without a
//! credential check for `auth_block`; other addresses are unaffected. One warning per episode.

use super::error::Error;
use super::RequestStats;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ipnet::IpNet;
use sha1::{Digest, Sha1};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    lockout: Lockout,
}

/// Failed authentications per client address, and the addresses currently blocked.
struct Lockout {
    limit: u32,
    window: Duration,
    block: Duration,
    by_addr: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Default)]
struct Failures {
    /// Times of the recent failures (at most `limit`).
    times: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// Above this many tracked addresses, entries with nothing recent are forgotten.
const MAX_TRACKED: usize = 4096;

impl Lockout {
    fn new(limit: u32, window: Duration, block: Duration) -> Lockout {
        Lockout {
            limit: limit.max(1),
            window,
            block,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = map.get_mut(&ip) else {
            return false;
        };
        match f.blocked_until {
            Some(t) if now < t => true,
            Some(_) => {
                // The episode is over: start afresh.
                map.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Record a failure; true when it starts a block.
    fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            let window = self.window;
            map.retain(|_, f| {
                f.blocked_until.is_some_and(|t| now < t)
                    || f.times
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let f = map.entry(ip).or_default();
        while f
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            f.times.pop_front();
        }
        f.times.push_back(now);
        if f.times.len() > self.limit as usize {
            f.times.pop_front();
        }
        if f.times.len() >= self.limit as usize && f.blocked_until.is_none() {
            f.blocked_until = Some(now + self.block);
            return true;
        }
        false
    }

    fn succeeded(&self, ip: IpAddr) {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip);
    }
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
            lockout: Lockout::new(10, Duration::from_secs(60), Duration::from_secs(60)),
        }
    }

    /// Set the lockout thresholds (`[server] auth_fail_limit`, `auth_fail_window`, `auth_block`).
    pub fn with_lockout(mut self, limit: u32, window: Duration, block: Duration) -> Gate {
        self.lockout = Lockout::new(limit, window, block);
        self
    }

    /// Check the credentials of a request from `ip`, applying the lockout.
    pub fn authenticate(&self, ip: IpAddr, authorization: Option<&str>) -> Result<(), Error> {
        let now = Instant::now();
        if self.lockout.blocked(ip, now) {
            return Err(Error::Forbidden(
                "Too many failed authentications from this address; try again later.".into(),
            ));
        }
        match self.check(authorization) {
            Ok(()) => {
                self.lockout.succeeded(ip);
                Ok(())
            }
            // No credentials at all: the challenge of a normal client, not an attempt.
            Err(e) if authorization.is_none() => Err(e),
            Err(e) => {
                if self.lockout.failed(ip, now) {
                    tracing::warn!(
                        address = %ip,
                        failures = self.lockout.limit,
                        window_s = self.lockout.window.as_secs_f64(),
                        block_s = self.lockout.block.as_secs_f64(),
                        "too many failed authentications: address blocked (403 without a \
                         credential check)"
                    );
                }
                Err(e)
            }
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
    // A header that is not visible ASCII is a (malformed) attempt, not an absent one.
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Err(e) = gate.authenticate(addr.ip().to_canonical(), auth) {
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
    fn lockout_blocks_one_address_only() {
        let g = gate().with_lockout(3, Duration::from_secs(60), Duration::from_secs(60));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let good = basic("manager", "manag3rpa55word");
        let bad = basic("manager", "wrong");
        // Challenges without credentials do not count.
        for _ in 0..5 {
            assert!(g.authenticate(a, None).is_err());
        }
        assert!(g.authenticate(a, Some(&good)).is_ok());
        for _ in 0..3 {
            assert!(g.authenticate(a, Some(&bad)).is_err());
        }
        let e = g.authenticate(a, Some(&good)).unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(e.message().contains("Too many"), "{e}");
        assert!(g.authenticate(b, Some(&good)).is_ok());
    }

    #[test]
    fn lockout_ends_and_old_failures_expire() {
        let l = Lockout::new(2, Duration::from_secs(10), Duration::from_secs(5));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(!l.failed(ip, t0));
        // The first failure is outside the window of the second: no block.
        assert!(!l.failed(ip, t0 + Duration::from_secs(11)));
        assert!(l.failed(ip, t0 + Duration::from_secs(12)));
        assert!(l.blocked(ip, t0 + Duration::from_secs(16)));
        assert!(!l.blocked(ip, t0 + Duration::from_secs(17)));
        // A fresh episode needs `limit` new failures.
        assert!(!l.failed(ip, t0 + Duration::from_secs(18)));
    }

    #[test]
    fn acl_handles_mapped_v4() {
        let g = gate();
        assert!(g.allowed(&"127.0.0.1:1".parse().unwrap()));
        assert!(g.allowed(&"[::ffff:127.0.0.1]:1".parse().unwrap()));
        assert!(!g.allowed(&"10.1.2.3:1".parse().unwrap()));
    }
}
