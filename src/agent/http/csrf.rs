//! No cross-site writes (issue 18 point 5). A page on another site that the administrator
//! visits can make the browser post to the agent with the credentials it keeps for the agent's
//! origin: an auto-submitted form (`text/plain`, urlencoded, multipart) or a `no-cors` fetch.
//! Every state-changing request (any method but GET, HEAD, OPTIONS) on the agent's routes
//! therefore passes [`guard`]:
//!
//! 1. `Sec-Fetch-Site`, when the browser sends it, must be `same-origin` or `none` (typed by
//!    the user); `same-site` is refused too (another port of the same host is another origin);
//! 2. `Origin`, when sent, must be this request's own origin: the same scheme (`https` on the
//!    TLS listener, else `http`), host and port (default ports filled in) as the `Host` it was
//!    sent to. `Origin: null` (what a browser sends for the page's own form post, the page
//!    being served with `Referrer-Policy: no-referrer`) passes only with `Sec-Fetch-Site:
//!    same-origin`/`none` or on the form route (whose token decides);
//! 3. the body must be `Content-Type: application/json`, which no form can send and a
//!    cross-site fetch can only send after a CORS preflight the agent never grants; the
//!    status page's own form route ([`FORM_ROUTE`]) is exempt: it is checked by the page's
//!    token instead (see [`super::page`]).
//!
//! Clients outside a browser (curl, scripts, monitoring) send neither header and only need
//! the content type.

use crate::server::error::Error;
use crate::server::OverTls;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The status page's button route: a form post that carries the page's token.
pub(crate) const FORM_ROUTE: &str = "/isymphony-sync/sync";

/// The middleware, on the agent's routes.
pub(crate) async fn guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let scheme = if req.extensions().get::<OverTls>().is_some() {
        "https"
    } else {
        "http"
    };
    let form = req.uri().path() == FORM_ROUTE;
    match check(req.headers(), scheme, form) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::debug!(error = %e, "state-changing request refused (cross-site guard)");
            e.into_response()
        }
    }
}

fn cross_site(what: &str) -> Error {
    Error::Unprocessable(format!(
        "refused: this request comes from another site ({}); use the buttons on the status \
         page at /isymphony-sync/ itself, or send JSON from a client that is no browser",
        crate::text::escape_control(what)
    ))
}

/// The three rules of the module docs, for a request that came over `scheme`.
pub(crate) fn check(h: &HeaderMap, scheme: &str, form: bool) -> Result<(), Error> {
    let text = |n: header::HeaderName| h.get(n).map(|v| v.to_str().unwrap_or("\u{0}"));
    let site = text(header::HeaderName::from_static("sec-fetch-site"));
    if let Some(site) = site {
        if !matches!(site, "same-origin" | "none") {
            return Err(cross_site(&format!("Sec-Fetch-Site: {site}")));
        }
    }
    match text(header::ORIGIN) {
        // A browser sends `Origin: null` for its own form post under `Referrer-Policy:
        // no-referrer`; then `Sec-Fetch-Site` (checked above) or the form's token decides.
        Some("null") if site.is_none() && !form => return Err(cross_site("null")),
        Some("null") | None => {}
        Some(origin) => {
            let own = text(header::HOST).and_then(|host| origin_of(scheme, host));
            let theirs = origin
                .split_once("://")
                .and_then(|(s, rest)| origin_of(s, rest));
            if own.is_none() || own != theirs {
                return Err(cross_site(origin));
            }
        }
    }
    if form {
        return Ok(());
    }
    let json = text(header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json {
        return Err(Error::UnsupportedMediaType(
            "send the request with Content-Type: application/json (e.g. a body of {} or \
             {\"full\": true})"
                .into(),
        ));
    }
    Ok(())
}

/// `(scheme, host, port)` of an origin, host names in lower case and the default port filled
/// in; None: not an http(s) origin.
fn origin_of(scheme: &str, authority: &str) -> Option<(String, String, u16)> {
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let a = authority.trim().trim_end_matches('/');
    if a.is_empty() || a.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (host, port) = match a.rfind(':') {
        Some(i) if !a[i..].contains(']') => (&a[..i], a[i + 1..].parse().ok()?),
        _ => (a, default),
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn rules() {
        let json = ("content-type", "application/json; charset=utf-8");
        let host = ("host", "127.0.0.1:58081");
        let ok = |p: &[(&'static str, &'static str)]| check(&headers(p), "http", false);
        assert!(ok(&[json, host]).is_ok());
        assert!(ok(&[json, host, ("origin", "http://127.0.0.1:58081")]).is_ok());
        assert!(ok(&[json, host, ("sec-fetch-site", "same-origin")]).is_ok());
        for bad in [
            ("origin", "http://127.0.0.1:58082"),
            ("origin", "https://127.0.0.1:58081"),
            ("origin", "http://localhost:58081"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            assert_eq!(ok(&[json, host, bad]).unwrap_err().status().as_u16(), 422);
        }
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let e = ok(&[("content-type", ct), host]).unwrap_err();
            assert_eq!(e.status().as_u16(), 415, "{ct}");
        }
        assert_eq!(ok(&[host]).unwrap_err().status().as_u16(), 415);
        // Default ports, the TLS listener's scheme, and the form route's exemption.
        let h = headers(&[json, ("host", "pbx"), ("origin", "http://PBX:80")]);
        assert!(check(&h, "http", false).is_ok());
        let h = headers(&[json, ("host", "pbx:443"), ("origin", "https://pbx")]);
        assert!(check(&h, "https", false).is_ok());
        assert!(check(&h, "http", false).is_err());
        let form = headers(&[("content-type", "application/x-www-form-urlencoded"), host]);
        assert!(check(&form, "http", true).is_ok());
        // Origin: null (the page's own form post under no-referrer) with Sec-Fetch-Site.
        let null = ("origin", "null");
        assert!(ok(&[json, host, null, ("sec-fetch-site", "same-origin")]).is_ok());
        let h = headers(&[("content-type", "text/plain"), host, null]);
        assert!(check(&h, "http", true).is_ok());
        let h = headers(&[host, null, ("sec-fetch-site", "cross-site")]);
        assert!(check(&h, "http", true).is_err());
    }
}
