//! Path canonicalisation of the Configuration API: every accepted spelling of a path (the
//! documentation's prefix, a trailing slash, `getBySlug`/`getByName` look-ups, the
//! `emailAdresses` spelling, the old `core/…/managingUser` parent) mapped onto the one form the
//! resource routers know, before routing.

use super::{resources, wire, App, ALT_PREFIX, API_PREFIX};
use crate::api::paths;
use axum::http::Uri;

/// Decode `%XX` escapes of one path segment.
pub(crate) fn pct_decode(s: &str) -> String {
    paths::unseg(s)
}

/// Encode a value for use as one path segment.
pub(crate) fn pct_encode(s: &str) -> String {
    paths::seg(s)
}

/// Map every accepted spelling of a path onto the one the routers know; a path that cannot be
/// routed is marked for a 400 ([`wire::bad_path`]).
pub(super) fn rewrite<B>(
    app: Option<&App>,
    mut req: axum::http::Request<B>,
) -> axum::http::Request<B> {
    if is_canonical(req.uri().path()) {
        return req;
    }
    let decoded = match wire::canonical_segments(req.uri().path()) {
        Ok(p) => p,
        Err(e) => {
            req.extensions_mut().insert(wire::BadPath(e.message()));
            return req;
        }
    };
    let path = req.uri().path();
    let new_path = canonical_path(app, &decoded);
    if new_path != path {
        let pq = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// A path that [`rewrite`] would leave as it is, told without allocating (the common case: the
/// agent and cxpanel send canonical paths). Conservative: false sends a path the full way.
fn is_canonical(path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix(API_PREFIX)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    // Escapes, empty segments and a trailing slash are normalised; the words below start a
    // look-up or a renamed segment (see `canonical_path`).
    !(rest.is_empty()
        || rest.contains('%')
        || rest.contains("//")
        || rest.ends_with('/')
        || rest.starts_with("core/")
        || rest.contains("getBy")
        || rest.contains("emailAdresses"))
}

fn canonical_path(app: Option<&App>, path: &str) -> String {
    use crate::live::routes::LIVE_ROOT;
    if let Some(rest) = path.strip_prefix(LIVE_ROOT) {
        if app.is_some() && (rest.is_empty() || rest.starts_with('/')) {
            return format!("{LIVE_ROOT}{}", crate::live::routes::canonical(rest));
        }
    }
    let api = app.and_then(|app| {
        path.strip_prefix(API_PREFIX)
            .or_else(|| path.strip_prefix(ALT_PREFIX))
            .map(|r| (app, r))
    });
    let (app, rest) = match api {
        Some((app, r)) if r.is_empty() || r.starts_with('/') => (app, r),
        _ => {
            // Not ours (e.g. the agent's routes): only the trailing slash is normalised.
            let t = path.trim_end_matches('/');
            return if t.is_empty() { "/".into() } else { t.into() };
        }
    };
    let mut segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    fn seg(segs: &[String], i: usize) -> &str {
        segs.get(i).map(String::as_str).unwrap_or("")
    }
    match (seg(&segs, 0), seg(&segs, 1), seg(&segs, 2)) {
        ("server", "coreServers", "getBySlug" | "getByName") if segs.len() >= 4 => {
            let slug = pct_decode(&segs[3]);
            let id = app.store.read(|st| {
                st.id_by_key(resources::CORE_SERVERS, &slug)
                    .map(str::to_string)
            });
            // An unknown slug becomes an id no object can have (NUL), so the handler says 404.
            let id = id.map(|i| pct_encode(&i)).unwrap_or_else(|| "%00".into());
            segs.splice(2..4, [id]);
        }
        ("core", _, "extensions") if segs.len() >= 4 => segs[0] = "asterisk".into(),
        ("asterisk", "voicemailAgents" | "recordingAgents", "getByName") => {
            segs.remove(2);
        }
        _ => {}
    }
    if seg(&segs, 0) == "asterisk"
        && seg(&segs, 2) == "extensions"
        && seg(&segs, 3) == "getByName"
        && segs.len() >= 5
    {
        let cs = pct_decode(&segs[1]);
        let ext = pct_decode(&segs[4]);
        let id = app.store.read(|st| {
            st.id_by_key(&resources::cs_scope(&cs, "extensions"), &ext)
                .map(str::to_string)
        });
        let id = id.map(|i| pct_encode(&i)).unwrap_or_else(|| "%00".into());
        segs.splice(3..5, [id]);
    }
    if seg(&segs, 0) == "contact" && seg(&segs, 4) == "emailAdresses" {
        segs[4] = "emailAddresses".into();
    }
    let mut out = String::from(API_PREFIX);
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path the shortcut passes is one the full rewrite leaves unchanged.
    #[test]
    fn the_shortcut_agrees_with_the_full_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let app: App = std::sync::Arc::new(super::super::AppState {
            store: super::super::store::Store::open(dir.path()).unwrap(),
            licensed_full_users: None,
        });
        let mut passed = 0;
        for tail in [
            "asterisk/cs1/extensions",
            "asterisk/cs1/extensions/e1",
            "asterisk/cs1/extensions/e1/managingUser",
            "server/coreServers/cs1",
            "server/coreServers/getBySlug/default",
            "server/coreServers/getByName/default",
            "core/cs1/extensions/e1/managingUser",
            "core/cs1/users",
            "asterisk/voicemailAgents/getByName/x",
            "asterisk/cs1/extensions/getByName/1001",
            "contact/cs1/users/u1/emailAdresses",
            "asterisk/cs1/extensions/",
            "asterisk//cs1",
            "asterisk/cs%31/extensions",
            "",
            "/",
        ] {
            let path = format!("{API_PREFIX}/{tail}");
            if is_canonical(&path) {
                passed += 1;
                assert_eq!(canonical_path(Some(&app), &path), path);
            }
        }
        assert_eq!(passed, 4);
        for other in [ALT_PREFIX, "/isymphony-sync/api/status", API_PREFIX] {
            assert!(!is_canonical(other), "{other}");
        }
    }
}
