//! The status page's search and object pages (issue 21 point 2): the same answer as
//! `isymphony-sync --explain KIND/KEY`, in the browser.
//!
//! | method | path                                   | answer |
//! |--------|----------------------------------------|--------|
//! | GET    | `/isymphony-sync/explain?kind=K&key=X` | 303 to the object's page (the search box; no key: the kind's list) |
//! | GET    | `/isymphony-sync/explain/KIND`         | 200 the kind's objects, each linked; unknown kind 404 |
//! | GET    | `/isymphony-sync/explain/KIND/KEY`     | 200 the object explained; unknown 404 with the closest keys; 502 when a side cannot be read |
//!
//! They sit behind the same auth, Host and cross-site checks as the page (they are routes of
//! its router). An explanation reads FreePBX and iSymphony, so one runs at a time: another
//! request waits up to [`EXPLAIN_WAIT`], then gets 503 with `Retry-After`.

use super::object::{self, kind_named};
use super::{no_store, page_csp, PageState, PAGE};
use crate::explain::{ExplainError, ObjectRef};
use crate::model::Kind;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;
use serde::Deserialize;
use std::future::Future;
use std::time::Duration;

/// How long a request waits for the explanation running before it (then 503).
pub(super) const EXPLAIN_WAIT: Duration = Duration::from_secs(5);
/// How long an explanation may take before the page gives up (both sides have timeouts of
/// their own; this bounds what the browser waits for).
const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The routes, with full paths.
pub(super) fn routes(r: Router<PageState>) -> Router<PageState> {
    r.route(&format!("{PAGE}/explain"), get(search))
        .route(&format!("{PAGE}/explain/{{kind}}"), get(kind_page))
        .route(
            &format!("{PAGE}/explain/{{kind}}/{{*key}}"),
            get(object_page),
        )
}

/// The search form's fields.
#[derive(Debug, Default, Deserialize)]
struct Search {
    kind: Option<String>,
    key: Option<String>,
}

/// An HTML answer with the page's policy, never cached.
fn answer(
    status: StatusCode,
    title: &str,
    kind: Option<Kind>,
    key: &str,
    body: Markup,
) -> Response {
    let mut r = no_store((status, Html(object::shell(title, kind, key, body))).into_response());
    if let Ok(v) = HeaderValue::from_str(page_csp()) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn unknown_kind(name: &str) -> Response {
    let msg = format!(
        "{name:?} is not a kind the agent explains; choose one of {}",
        crate::explain::KINDS.map(|k| k.name()).join(", ")
    );
    answer(
        StatusCode::NOT_FOUND,
        "Unknown kind",
        None,
        "",
        object::failure(&msg),
    )
}

async fn search(q: Result<Query<Search>, QueryRejection>) -> Response {
    // A malformed query is an empty search (the form is shown again).
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let filled = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let (kind, key) = (filled(&q.kind), filled(&q.key));
    // `extension/1001` typed into the key box is taken whole.
    if let Some(obj) = key.as_deref().and_then(|k| k.parse::<ObjectRef>().ok()) {
        return see_other(&object::object_url(obj.kind, &obj.key));
    }
    match (kind.as_deref().map(|k| (k, kind_named(k))), key) {
        (Some((_, Some(k))), Some(key)) => see_other(&object::object_url(k, &key)),
        (Some((_, Some(k))), None) => see_other(&object::kind_url(k)),
        (Some((name, None)), _) => unknown_kind(name),
        (None, _) => answer(
            StatusCode::OK,
            "Explain an object",
            None,
            "",
            object::failure("choose a kind and type its key"),
        ),
    }
}

/// Run `fut` as the one explanation of the moment; `Err` is the answer when it cannot run.
async fn one_at_a_time<T>(st: &PageState, fut: impl Future<Output = T>) -> Result<T, Response> {
    let busy = || {
        let mut r = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            None,
            "",
            object::failure("another explanation is being computed; try again in a few seconds"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        r
    };
    let Ok(Ok(_permit)) = tokio::time::timeout(EXPLAIN_WAIT, st.explains.acquire()).await else {
        return Err(busy());
    };
    tokio::time::timeout(EXPLAIN_TIMEOUT, fut)
        .await
        .map_err(|_| {
            let msg = format!("no answer within {EXPLAIN_TIMEOUT:?}: FreePBX or iSymphony is slow");
            answer(
                StatusCode::GATEWAY_TIMEOUT,
                "Timed out",
                None,
                "",
                object::failure(&msg),
            )
        })
}

async fn kind_page(State(st): State<PageState>, Path(name): Path<String>) -> Response {
    let Some(kind) = kind_named(&name) else {
        return unknown_kind(&name);
    };
    let title = format!("{} objects", kind.label());
    match one_at_a_time(&st, st.api.keys(kind)).await {
        Ok(Ok(keys)) => answer(
            StatusCode::OK,
            &title,
            Some(kind),
            "",
            object::kind_list(kind, &keys),
        ),
        Ok(Err(e)) => failed(&e, Some(kind), ""),
        Err(r) => r,
    }
}

/// The answer for an error of the explanation.
fn failed(e: &ExplainError, kind: Option<Kind>, key: &str) -> Response {
    let msg = e.to_string();
    match e {
        ExplainError::Usage(_) => answer(
            StatusCode::BAD_REQUEST,
            "Not KIND/KEY",
            kind,
            key,
            object::failure(&msg),
        ),
        ExplainError::Unknown { suggestions, .. } => {
            let body = match kind {
                Some(k) => object::unknown(k, &msg, suggestions),
                None => object::failure(&msg),
            };
            answer(StatusCode::NOT_FOUND, "Unknown object", kind, key, body)
        }
        ExplainError::ShuttingDown => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "Stopping",
            kind,
            key,
            object::failure(&msg),
        ),
        ExplainError::Pass(_) => {
            let msg = format!("cannot explain: {msg}");
            answer(
                StatusCode::BAD_GATEWAY,
                "Cannot explain",
                kind,
                key,
                object::failure(&msg),
            )
        }
    }
}

async fn object_page(
    State(st): State<PageState>,
    Path((name, key)): Path<(String, String)>,
) -> Response {
    let Some(kind) = kind_named(&name) else {
        return unknown_kind(&name);
    };
    let obj = match format!("{name}/{key}").parse::<ObjectRef>() {
        Ok(o) => o,
        Err(e) => return failed(&e, Some(kind), &key),
    };
    match one_at_a_time(&st, st.api.explain(obj.clone())).await {
        Ok(Ok(e)) => {
            let title = format!("{} {}", kind.label(), obj.key);
            answer(
                StatusCode::OK,
                &title,
                Some(kind),
                &obj.key,
                object::explanation(&e),
            )
        }
        Ok(Err(e)) => failed(&e, Some(kind), &obj.key),
        Err(r) => r,
    }
}
