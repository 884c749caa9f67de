//! The status page at `/isymphony-sync/`: what an administrator wants to see at a glance
//! (role, both sides, the last passes, what is pending, what is managed, warnings, two charts).
//!
//! Everything is drawn on the server: the HTML, its small style sheet and script, and the SVG
//! charts come from this binary (PBX hosts are often offline: no CDN). Without JavaScript the
//! page is complete and the buttons are plain form posts; with it, the live part
//! (`/isymphony-sync/live`, the same HTML the page embeds) is fetched every two seconds and
//! swapped in place, and the buttons post without leaving the page.
//!
//! The buttons are guarded against cross-site requests twice: the form carries a random token
//! of this process (a foreign page cannot read it: the page is behind the realm's credentials)
//! and a request from another origin (`Origin`: scheme, host and port; `Sec-Fetch-Site`) is
//! refused by [`crate::agent::http::csrf`] (422, saying what to do).
//!
//! A search box (a GET form, above the live part) leads to one page per object with the same
//! content as `--explain KIND/KEY` ([`explain`]); the pending plan, the managed counts and the
//! readiness card link to those pages.
//!
//! The page's one inline style sheet and one inline script are allowed by their SHA-256 in
//! its `Content-Security-Policy` ([`page_csp`]); nothing else inline runs.

mod explain;
pub(crate) mod localtime;
mod object;
mod render;
mod svg;

use super::agent_api::{AgentApi, HolderError, PlanError};
use super::plan_share::PlanShare;
use crate::server::error::Error;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Where the page lives (the endpoint routes it without the trailing slash).
pub(crate) const PAGE: &str = "/isymphony-sync";

/// The stylesheet of every page under [`PAGE`] (the status page and the object pages).
pub(super) const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:0 .8em 2em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:.6em 0 .2em}h2{font-size:1.05em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14em,1fr));gap:.6em}.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em .8em;overflow-wrap:anywhere}
.ok{color:#1e7b34}.bad{color:#c0392b}.warn{color:#9a6700}.muted{color:#666}
.scroll{overflow-x:auto}table{border-collapse:collapse;background:#fff;font-size:.9em}
td,th{border:1px solid #ddd;padding:.2em .45em;text-align:left;vertical-align:top}
tr.failed td{background:#fdecea}tr.partial td{background:#fff6dd}
.chart{display:block;width:100%;max-width:640px;height:auto;background:#fff;border:1px solid #ddd}
.chart text{font-size:11px}@media (max-width:32em){.chart text{font-size:15px}}
.nw{white-space:nowrap}td.msg{min-width:16em}
form.trigger{display:inline}button{font-size:1em;padding:.4em 1em;margin:.2em .4em .2em 0}
code,.op{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
";

/// A whole page under [`PAGE`]: `title` and the style sheet in its head, `body` as it is.
pub(super) fn document(title: &str, body: maud::Markup) -> String {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// How long the page waits for the pending plan before it shows "being computed".
const PLAN_WAIT: Duration = Duration::from_secs(3);
/// How long the lock holder is shown before MariaDB is asked again (one short connection).
const HOLDER_MAX_AGE: Duration = Duration::from_secs(10);
/// How long the page waits for MariaDB's answer about the lock.
const HOLDER_WAIT: Duration = Duration::from_secs(2);

type Holder = Result<Option<String>, Unavailable>;

/// Why the page cannot show the plan or the lock holder (it says so in their place).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Unavailable {
    #[error("{0}")]
    Plan(PlanError),
    #[error("still being computed (a dry-run pass reads both sides)")]
    Computing,
    #[error("MariaDB did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Lock(Arc<HolderError>),
}

/// What the page handlers share.
#[derive(Clone)]
pub(crate) struct PageState {
    api: Arc<dyn AgentApi>,
    plans: Arc<PlanShare>,
    /// The CSRF token of this router (random per process).
    token: Arc<String>,
    /// The last answer about the lock holder, and when it came.
    holder: Arc<Mutex<Option<(Instant, Holder)>>>,
    /// One explanation at a time (each reads both sides; see [`explain`]).
    explains: Arc<tokio::sync::Semaphore>,
}

impl PageState {
    pub(crate) fn new(api: Arc<dyn AgentApi>, plans: Arc<PlanShare>) -> PageState {
        PageState {
            api,
            plans,
            token: Arc::new(hex::encode(rand::random::<[u8; 16]>())),
            holder: Arc::new(Mutex::new(None)),
            explains: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

/// The page's routes, with full paths.
pub(crate) fn router(state: PageState) -> Router {
    let r = Router::new()
        .route(PAGE, get(page))
        .route(&format!("{PAGE}/live"), get(live))
        .route(&format!("{PAGE}/sync"), post(sync));
    explain::routes(r).with_state(state)
}

/// The pending plan, or why it is not shown yet.
async fn pending(st: &PageState) -> Result<serde_json::Value, Unavailable> {
    let plans = st.plans.clone();
    let api = st.api.clone();
    match tokio::time::timeout(PLAN_WAIT, async move { plans.get(&api).await }).await {
        Ok(out) => out.json().map(|(plan, _)| plan).map_err(Unavailable::Plan),
        // The computation goes on in its own task; the next refresh gets it.
        Err(_) => Err(Unavailable::Computing),
    }
}

/// Who holds the writer lock, asked of MariaDB at most every [`HOLDER_MAX_AGE`].
async fn holder(st: &PageState) -> Holder {
    let cached = {
        let g = st.holder.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref()
            .filter(|(at, _)| at.elapsed() < HOLDER_MAX_AGE)
            .map(|(_, h)| h.clone())
    };
    if let Some(h) = cached {
        return h;
    }
    let h = match tokio::time::timeout(HOLDER_WAIT, st.api.lock_holder()).await {
        Ok(h) => h.map_err(|e| Unavailable::Lock(Arc::new(e))),
        Err(_) => Err(Unavailable::Timeout(HOLDER_WAIT)),
    };
    *st.holder.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), h.clone()));
    h
}

async fn live_html(st: &PageState) -> String {
    let (plan, lock) = tokio::join!(pending(st), holder(st));
    let (status, history) = st.api.state().status_and_history();
    render::live(&status, &history, &plan, &lock)
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The page's policy: its inline style and script by their hashes, fetches and form posts to
/// this origin only, no framing (the endpoint's guard adds the other protective headers).
pub(crate) fn page_csp() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        let h = |s: &str| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s));
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
             img-src 'self' data:; connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            h(render::SCRIPT),
            h(STYLE)
        )
    })
}

async fn page(State(st): State<PageState>) -> Response {
    let live = live_html(&st).await;
    let mut r = no_store(Html(render::page(&live, &st.token)).into_response());
    if let Ok(v) = HeaderValue::from_str(page_csp()) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

async fn live(State(st): State<PageState>) -> Response {
    no_store(Html(live_html(&st).await).into_response())
}

/// The form fields of a button post (`token`, `full`); unknown fields are ignored.
fn form_fields(body: &[u8]) -> (Option<String>, bool) {
    let mut token = None;
    let mut full = false;
    for pair in String::from_utf8_lossy(body).split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v.replace('+', " ");
        let v = percent_encoding::percent_decode_str(&v).decode_utf8_lossy();
        match k {
            "token" => token = Some(v.into_owned()),
            "full" => full = v == "1" || v == "true",
            _ => {}
        }
    }
    (token, full)
}

async fn sync(State(st): State<PageState>, body: Bytes) -> Result<Response, Error> {
    // The cross-site rules (Origin, Sec-Fetch-Site) were applied by `csrf::guard`.
    let (token, full) = form_fields(&body);
    let ok = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(st.token.as_bytes())));
    if !ok {
        return Err(Error::Unprocessable(format!(
            "refused: the form's token is missing or out of date (the agent restarted?); \
             reload the status page at {PAGE}/ and press the button again"
        )));
    }
    st.api.trigger_sync(full);
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_static("/isymphony-sync/"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests;
