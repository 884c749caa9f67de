//! What the endpoint does for the agent's own pages and resources before anything else
//! (issue 18 points 6 and 12): every path outside `/communication_manager/`, and every path
//! on the agent's own listener ([`super::start_agent_only`]).
//!
//! * **DNS rebinding.** A request whose `Host` is not the listener's address (any address when
//!   the listener is on `0.0.0.0`/`::`), `localhost`, or a name in `[server] allowed_hosts` is
//!   answered 421 before its credentials are checked (so a rebinding page can neither read nor
//!   count towards a lockout). The port is not compared: the name is what a rebinding page
//!   cannot forge. A request without `Host` (HTTP/1.0) is no browser's and is let through.
//! * **Protective headers** on every answer: a strict `Content-Security-Policy` unless the
//!   handler set its own (the status page sets one with its hashes), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `Cache-Control:
//!   no-store`.
//!
//! The embedded endpoint (paths under `/communication_manager/`, the Live API's
//! included) is left as iSymphony serves it: its clients (the cxpanel module, the agent on
//! another host) name the server however their settings say, and it serves no pages.

use super::error::Error;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The policy of an answer that is no page: nothing may be loaded, framed or posted.
pub const DEFAULT_CSP: &str = "default-src 'none'; connect-src 'self'; form-action 'self'; \
                               frame-ancestors 'none'; base-uri 'none'";

/// The paths of the iSymphony REST system; everything else is the agent's.
const REST_ROOT: &str = "/communication_manager/";

/// Which requests the guard covers and which hosts they may name.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Every path (the agent's own listener), or only paths outside [`REST_ROOT`].
    all_paths: bool,
    /// The listeners' addresses; None: some listener is on an unspecified address, so any
    /// address literal may be this host's.
    ips: Option<Vec<IpAddr>>,
    /// `allowed_hosts`, lower case.
    names: Vec<String>,
}

impl Guard {
    pub fn new(listeners: &[SocketAddr], allowed_hosts: &[String], all_paths: bool) -> Guard {
        let any = listeners.iter().any(|a| a.ip().is_unspecified());
        Guard {
            all_paths,
            ips: (!any).then(|| listeners.iter().map(|a| a.ip().to_canonical()).collect()),
            names: allowed_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    fn covers(&self, path: &str) -> bool {
        self.all_paths || !path.starts_with(REST_ROOT)
    }

    /// May a request name `host` (a `Host` value: name or address, optional port)?
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self
                .ips
                .as_ref()
                .map_or(true, |ips| ips.contains(&ip.to_canonical()));
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name == "localhost" || self.names.contains(&name)
    }
}

/// The host part of a `Host` value (`[v6]` keeps its brackets); None: not a plausible host.
fn host_name(host: &str) -> Option<&str> {
    let host = host.trim();
    let name = if host.starts_with('[') {
        let end = host.find(']')?;
        let rest = &host[end + 1..];
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        &host[..=end]
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if is_port(port) => n,
            Some(_) => return None,
            None => host,
        }
    };
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b));
    ok.then_some(name)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Set the protective headers on an answer of the agent (a handler's own CSP stays).
pub fn protect(h: &mut HeaderMap) {
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The middleware (`axum::middleware::from_fn_with_state`), outside the access check.
pub async fn guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if !g.covers(req.uri().path()) {
        return next.run(req).await;
    }
    // The Host header, and the authority of an absolute request line when there is one.
    let named: Vec<String> = req
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string())
        .chain(req.uri().authority().map(|a| a.as_str().to_string()))
        .collect();
    let mut resp = match named.iter().find(|h| !g.allows(h)) {
        Some(_) => {
            tracing::debug!("request for another host name: 421 (DNS rebinding guard)");
            Error::Misdirected(
                "This agent answers only requests addressed to its own address, localhost or a \
                 name in [server] allowed_hosts."
                    .into(),
            )
            .into_response()
        }
        None => next.run(req).await,
    };
    protect(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let g = Guard::new(
            &["127.0.0.1:58081".parse().unwrap()],
            &["PBX.example.com".into()],
            true,
        );
        for ok in [
            "127.0.0.1:58081",
            "127.0.0.1",
            "localhost:1",
            "LOCALHOST",
            "localhost.",
            "pbx.example.com:58081",
            "Pbx.Example.Com",
        ] {
            assert!(g.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:58081",
            "127.0.0.2:58081",
            "[::1]:58081",
            "localhost.evil.example",
            "pbx.example.com.evil",
            "127.0.0.1:x",
            "a b",
            "",
            "user@127.0.0.1",
        ] {
            assert!(!g.allows(bad), "{bad}");
        }
        let any = Guard::new(&["0.0.0.0:1".parse().unwrap()], &[], true);
        assert!(any.allows("192.0.2.7:58081") && any.allows("[2001:db8::1]:1"));
        assert!(!any.allows("evil.example"));
        assert!(Guard::new(&[], &[], false).covers("/isymphony-sync/api/status"));
        assert!(!Guard::new(&[], &[], false).covers("/communication_manager/api/resource/x"));
    }
}
