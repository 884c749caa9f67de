//! The access check in front of every route: ACL first (403; a peer outside the ACL is normally
//! closed at accept already, see [`super::conn`], so this is the second line), then HTTP Basic
//! credentials (none: 401 with a realm challenge; wrong: 403), compared in constant time. It also
//! counts requests by method and gives axum's bodiless 405 a JSON body like every other error.
//!
//! Lockout ([`super::lockout`]): after `auth_fail_limit` failed authentications (credentials
//! sent but wrong or malformed; a bare request without credentials is the normal 401 challenge
//! and does not count) for one user name from one network within `auth_fail_window`, that
//! user name gets 403 from that network without a credential check for `auth_block`; other
//! networks and other user names are unaffected. One warning per episode.
//!
//! A scrape token (`[server] metrics_token`) sent as `Authorization: Bearer …` reads the
//! agent's metrics ([`SCRAPE_PATH`]) and nothing else, past any lockout ([`Access::scrape`]).
//!
//! The agent's own requests to the endpoint it started carry a per-process random token
//! ([`AGENT_HEADER`]); they are checked for credentials but never counted nor blocked, so no
//! one can lock the agent out of its own endpoint.

use super::error::Error;
use super::lockout::{Lockout, Network, UserName};
use super::RequestStats;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ipnet::IpNet;
use sha1::{Digest, Sha1};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Who may use the endpoint (ACL, credentials, lockout, tokens), built once from `[server]`.
pub struct Access {
    pub realm: String,
    pub acl: Vec<IpNet>,
    /// SHA-1 of `username` and `password`: fixed-length values, so the comparison does not
    /// leak their lengths either.
    user_digest: [u8; 20],
    pass_digest: [u8; 20],
    counters: [AtomicU64; 5],
    lockout: Lockout,
    /// SHA-1 of this process's agent token (random per endpoint start; never stored).
    agent_digest: [u8; 20],
    agent_token: crate::secret::Secret,
    /// SHA-1 of `[server] metrics_token`, the bearer token that reads [`SCRAPE_PATH`].
    scrape_digest: Option<[u8; 20]>,
    /// SHA-1 of the last whole `Authorization` value that passed [`Access::check`]: a client
    /// sends the same value on every request, and one digest compared is a quarter of the
    /// work of decoding it and comparing name and password (still without leaking lengths).
    verified: std::sync::RwLock<Option<[u8; 20]>>,
}

/// The one path a scrape token ([`Access::with_scrape_token`]) reads: the agent's metrics.
pub const SCRAPE_PATH: &str = "/isymphony-sync/api/metrics";

pub use crate::api::AGENT_HEADER;

fn digest(s: &[u8]) -> [u8; 20] {
    Sha1::digest(s).into()
}

impl Access {
    pub fn new(realm: &str, acl: &[IpNet], username: &str, password: &str) -> Access {
        let token = hex::encode(rand::random::<[u8; 32]>());
        Access {
            realm: realm.to_string(),
            acl: acl.to_vec(),
            user_digest: digest(username.as_bytes()),
            pass_digest: digest(password.as_bytes()),
            counters: Default::default(),
            lockout: Lockout::new(10, Duration::from_secs(60), Duration::from_secs(60)),
            agent_digest: digest(token.as_bytes()),
            agent_token: crate::secret::Secret::new(token),
            scrape_digest: None,
            verified: std::sync::RwLock::new(None),
        }
    }

    /// Accept `Authorization: Bearer <token>` on [`SCRAPE_PATH`] (`[server] metrics_token`).
    pub fn with_scrape_token(mut self, token: Option<&crate::secret::Secret>) -> Access {
        self.scrape_digest = token.map(|t| digest(t.expose().as_bytes()));
        self
    }

    /// A bearer token's verdict on `path`: None when it is no scrape request (not the metrics
    /// path, no token configured, or no `Bearer` value), else whether the token is right. A
    /// scrape request never touches the lockout: a monitoring system cannot be locked out, and
    /// a wrong token locks no one out either (it is as long as a key; guessing is hopeless).
    pub fn scrape(&self, path: &str, authorization: Option<&str>) -> Option<bool> {
        let want = self.scrape_digest.as_ref()?;
        if path != SCRAPE_PATH {
            return None;
        }
        let (scheme, token) = authorization?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Some(bool::from(digest(token.trim().as_bytes()).ct_eq(want)))
    }

    /// The token this process's own API client sends in [`AGENT_HEADER`].
    pub fn agent_token(&self) -> crate::secret::Secret {
        self.agent_token.clone()
    }

    /// Does an [`AGENT_HEADER`] value prove the request comes from this process?
    pub fn is_agent(&self, value: &[u8]) -> bool {
        bool::from(digest(value).ct_eq(&self.agent_digest))
    }

    /// Set the lockout thresholds (`[server] auth_fail_limit`, `auth_fail_window`, `auth_block`).
    pub fn with_lockout(mut self, limit: u32, window: Duration, block: Duration) -> Access {
        self.lockout = Lockout::new(limit, window, block);
        self
    }

    /// Check the credentials of a request from `ip`, applying the lockout unless `agent`
    /// (the request carried this process's agent token).
    pub fn authenticate(
        &self,
        ip: IpAddr,
        authorization: Option<&str>,
        agent: bool,
    ) -> Result<(), Error> {
        if agent {
            return self.check(authorization);
        }
        // No credentials at all: the challenge of a normal client, not an attempt.
        let Some(value) = authorization else {
            return self.check(None);
        };
        let now = Instant::now();
        let network = Network::of(ip);
        let known = self.known(value);
        let name = if known {
            UserName::Configured
        } else {
            self.user_name(value)
        };
        let key = (network, name);
        if let Some(left) = self.lockout.blocked(key, now) {
            return Err(Error::Forbidden(format!(
                "Too many failed authentications for this user name from this network; try \
                 again in {} s.",
                left.as_secs().max(1)
            )));
        }
        let checked = if known {
            Ok(())
        } else {
            self.check(authorization)
        };
        match checked {
            Ok(()) => {
                self.lockout.succeeded(key);
                Ok(())
            }
            Err(e) => {
                if self.lockout.failed(key, now) {
                    tracing::warn!(
                        network = %network,
                        user = if key.1 == UserName::Configured { "the configured [server] username" } else { "other user names" },
                        failures = self.lockout.limit,
                        window_s = self.lockout.window.as_secs_f64(),
                        block_s = self.lockout.block.as_secs_f64(),
                        "too many failed authentications: this user name is blocked from this \
                         network (403 without a credential check)"
                    );
                }
                Err(e)
            }
        }
    }

    /// Which user name an `Authorization` value is for (never the name itself: a user may
    /// have typed a password there).
    fn user_name(&self, authorization: &str) -> UserName {
        match decode_basic(authorization) {
            Some((user, _)) if bool::from(digest(&user).ct_eq(&self.user_digest)) => {
                UserName::Configured
            }
            _ => UserName::Other,
        }
    }

    pub fn allowed(&self, addr: &SocketAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
        let ip = addr.ip().to_canonical();
        self.acl.iter().any(|net| net.contains(&ip))
    }

    /// Is `value` the `Authorization` value that last passed [`Access::check`]?
    fn known(&self, value: &str) -> bool {
        let last = *self.verified.read().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|d| bool::from(digest(value.as_bytes()).ct_eq(&d)))
    }

    /// Check an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), Error> {
        if authorization.is_some_and(|v| self.known(v)) {
            return Ok(());
        }
        let unauthorized = || Error::Unauthorized {
            realm: self.realm.clone(),
        };
        let (user, pass) = authorization
            .and_then(decode_basic)
            .ok_or_else(unauthorized)?;
        let ok = digest(&user).ct_eq(&self.user_digest) & digest(&pass).ct_eq(&self.pass_digest);
        if bool::from(ok) {
            if let Some(v) = authorization {
                *self.verified.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(digest(v.as_bytes()));
            }
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

/// User name and password of a `Basic` `Authorization` value (None: not Basic, not base64,
/// no colon).
fn decode_basic(value: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let mut decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let pass = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Some((decoded, pass))
}

impl Access {
    /// The access check before the route (see [`super::front`]): count the request, then
    /// the ACL, then the scrape token or the credentials. The refusal, or None: admitted.
    pub fn admit(&self, addr: SocketAddr, req: &Request) -> Option<Response> {
        self.count(req.method());
        if !self.allowed(&addr) {
            tracing::debug!(%addr, "refused by the ACL");
            return Some(Error::Forbidden("Access denied by the ACL.".into()).into_response());
        }
        // A header that is not visible ASCII is a (malformed) attempt, not an absent one.
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let agent = req
            .headers()
            .get(AGENT_HEADER)
            .is_some_and(|v| self.is_agent(v.as_bytes()));
        match self.scrape(req.uri().path(), auth) {
            Some(true) => None,
            Some(false) => Some(
                Error::Forbidden("Invalid scrape token ([server] metrics_token).".into())
                    .into_response(),
            ),
            None => self
                .authenticate(addr.ip().to_canonical(), auth, agent)
                .err()
                .map(IntoResponse::into_response),
        }
    }
}

/// axum's bodiless 405, given a JSON body like every other error (its `Allow` kept).
pub fn json_405(resp: Response) -> Response {
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

    fn access() -> Access {
        Access::new(
            "R",
            &["127.0.0.0/8".parse().unwrap()],
            "manager",
            crate::config::DEFAULT_API_PASSWORD,
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
        let g = access();
        assert!(g
            .check(Some(&basic("manager", crate::config::DEFAULT_API_PASSWORD)))
            .is_ok());
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lockout_is_per_network_and_user_name() {
        let g = access().with_lockout(3, Duration::from_secs(60), Duration::from_secs(60));
        let good = basic("manager", crate::config::DEFAULT_API_PASSWORD);
        let bad = basic("manager", "wrong");
        // Challenges without credentials do not count.
        for _ in 0..5 {
            assert!(g.authenticate(ip("127.0.0.1"), None, false).is_err());
        }
        assert!(g.authenticate(ip("127.0.0.1"), Some(&good), false).is_ok());
        // Three addresses of 127/8 share the loopback budget.
        for a in ["127.0.0.1", "127.0.0.2", "127.9.9.9"] {
            assert!(g.authenticate(ip(a), Some(&bad), false).is_err());
        }
        for a in ["127.0.0.1", "127.0.0.30", "::1"] {
            let e = g.authenticate(ip(a), Some(&good), false).unwrap_err();
            assert_eq!(e.status(), StatusCode::FORBIDDEN);
            assert!(
                e.message().contains("Too many") && e.message().contains("try"),
                "{e}"
            );
        }
        // Another network, the same user name: unaffected.
        assert!(g.authenticate(ip("192.0.2.2"), Some(&good), false).is_ok());
        // Failures for another user name are a key of their own: the configured name from
        // the same network still logs in.
        for _ in 0..3 {
            let _ = g.authenticate(ip("192.0.2.9"), Some(&basic("root", "x")), false);
        }
        assert!(g.authenticate(ip("192.0.2.9"), Some(&good), false).is_ok());
        // The agent's own requests skip the lockout entirely, but not the credential check.
        assert!(g.authenticate(ip("127.0.0.1"), Some(&good), true).is_ok());
        for _ in 0..20 {
            assert!(g.authenticate(ip("127.0.0.1"), Some(&bad), true).is_err());
        }
        assert!(g.authenticate(ip("192.0.2.2"), Some(&good), false).is_ok());
    }

    /// The remembered value answers exactly as the full check: a second request with the
    /// same header passes, any other value is checked afresh (and a block still applies).
    #[test]
    fn a_remembered_value_changes_no_verdict() {
        let g = access().with_lockout(2, Duration::from_secs(60), Duration::from_secs(60));
        let good = basic("manager", crate::config::DEFAULT_API_PASSWORD);
        for _ in 0..2 {
            assert!(g.check(Some(&good)).is_ok());
            assert!(g.known(&good));
        }
        let spaced = format!(" {good}");
        assert!(!g.known(&spaced) && g.check(Some(&spaced)).is_ok());
        let bad = basic("manager", "wrong");
        assert!(!g.known(&bad));
        assert_eq!(
            g.check(Some(&bad)).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        let ip = ip("192.0.2.1");
        for _ in 0..2 {
            assert!(g.authenticate(ip, Some(&bad), false).is_err());
        }
        assert!(g.known(&spaced));
        let e = g.authenticate(ip, Some(&spaced), false).unwrap_err();
        assert!(e.message().contains("Too many"), "{e}");
    }

    #[test]
    fn scrape_token_reads_only_the_metrics() {
        let token = crate::secret::Secret::new("0123456789abcdef-scrape");
        let g = access().with_scrape_token(Some(&token));
        let bearer = "Bearer 0123456789abcdef-scrape";
        assert_eq!(g.scrape(SCRAPE_PATH, Some(bearer)), Some(true));
        assert_eq!(
            g.scrape(SCRAPE_PATH, Some("bearer  0123456789abcdef-scrape ")),
            Some(true)
        );
        assert_eq!(g.scrape(SCRAPE_PATH, Some("Bearer nope")), Some(false));
        assert_eq!(g.scrape("/isymphony-sync/api/plan", Some(bearer)), None);
        assert_eq!(g.scrape(SCRAPE_PATH, Some(&basic("manager", "x"))), None);
        assert_eq!(g.scrape(SCRAPE_PATH, None), None);
        assert_eq!(access().scrape(SCRAPE_PATH, Some(bearer)), None);
    }

    #[test]
    fn agent_token_is_random_and_checked() {
        let g = access();
        let t = g.agent_token();
        assert_eq!(t.expose().len(), 64);
        assert!(g.is_agent(t.expose().as_bytes()));
        assert!(!g.is_agent(b""));
        assert!(!g.is_agent(&t.expose().as_bytes()[..63]));
        assert_ne!(access().agent_token().expose(), t.expose());
    }

    #[test]
    fn acl_handles_mapped_v4() {
        let g = access();
        assert!(g.allowed(&"127.0.0.1:1".parse().unwrap()));
        assert!(g.allowed(&"[::ffff:127.0.0.1]:1".parse().unwrap()));
        assert!(!g.allowed(&"10.1.2.3:1".parse().unwrap()));
    }
}
