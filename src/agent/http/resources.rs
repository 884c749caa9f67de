//! The agent's own HTTP resources, on a listener of their own (`[server] agent_listen`,
//! 127.0.0.1:58081 by default, so that they never take iSymphony's ports) or next to the
//! embedded endpoint on the embedded endpoint; behind the same auth and ACL layer.
//! The endpoint (`server/`) knows nothing of them: [`router`] is merged into its router as
//! extra routes. Errors are the endpoint's one [`Error`] enum, so status codes and bodies are
//! mapped in one place.
//!
//! | method | path                         | answer |
//! |--------|------------------------------|--------|
//! | GET    | `/isymphony-sync/`            | 200 HTML status page (see [`super::page`]) |
//! | GET    | `/isymphony-sync/live`        | 200 HTML fragment: the live part of the page |
//! | POST   | `/isymphony-sync/sync`        | 303 to the page; form `token`, `full`; no/wrong token or a cross-site request is 422 |
//! | GET    | `/isymphony-sync/explain…`    | the search box and object pages (see [`super::page`]'s `explain`) |
//! | GET    | `/isymphony-sync/api/status`  | 200 JSON status (role, last pass, reachability, next verify) |
//! | GET    | `/isymphony-sync/api/plan`    | 200 JSON dry-run plan (leader or standby), shared by concurrent requests; `computed_at`, `age_seconds` and `Age` say how old |
//! | POST   | `/isymphony-sync/api/sync`    | 204; `Content-Type: application/json` (else 415), optional body `{"full": true}`; a bad body or a cross-site request is 422 |
//! | GET    | `/isymphony-sync/api/metrics` | 200 Prometheus metrics (OpenMetrics text 1.0.0) |
//!
//! Every state-changing route passes [`super::csrf::guard`] (no cross-site writes); the
//! endpoint adds the Host check and the protective headers ([`crate::server::guard`]).
//!
//! The router is generic over [`AgentApi`], so these resources are tested without a daemon.

use super::agent_api::AgentApi;
use super::page::{self, PageState};
use super::plan_share::PlanShare;
use crate::server::error::Error;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

/// Where the agent resources live.
pub(crate) const PREFIX: &str = "/isymphony-sync/api";

/// The body of `POST …/sync`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    #[serde(default)]
    full: bool,
}

/// The agent resources, with full paths (merge into the endpoint's router).
pub(crate) fn router(api: Arc<dyn AgentApi>) -> Router {
    router_with(api, Arc::new(PlanShare::default()))
}

/// [`router`] with a given plan sharing (tests choose its freshness).
pub(crate) fn router_with(api: Arc<dyn AgentApi>, plans: Arc<PlanShare>) -> Router {
    let pages = page::router(PageState::new(api.clone(), plans.clone()));
    Router::new()
        .route(&format!("{PREFIX}/status"), get(status))
        .route(
            &format!("{PREFIX}/plan"),
            get(move |State(api): State<Arc<dyn AgentApi>>| plan(api, plans.clone())),
        )
        .route(&format!("{PREFIX}/sync"), post(sync))
        // The one path a scrape token reads (the access check knows it as SCRAPE_PATH).
        .route(crate::server::auth::SCRAPE_PATH, get(metrics))
        .with_state(api)
        .merge(pages)
        // Every state-changing route: no cross-site request (issue 18 point 5).
        .layer(axum::middleware::from_fn(super::csrf::guard))
}

async fn status(State(api): State<Arc<dyn AgentApi>>) -> Response {
    Json(api.state().status()).into_response()
}

async fn plan(api: Arc<dyn AgentApi>, plans: Arc<PlanShare>) -> Result<Response, Error> {
    let (plan, age) = plans
        .get(&api)
        .await
        .json()
        .map_err(|message| Error::Failed(format!("cannot compute the plan: {message}")))?;
    let mut resp = Json(plan).into_response();
    resp.headers_mut()
        .insert(header::AGE, header::HeaderValue::from(age.as_secs()));
    Ok(resp)
}

async fn sync(State(api): State<Arc<dyn AgentApi>>, body: Bytes) -> Result<StatusCode, Error> {
    let text = String::from_utf8_lossy(&body);
    let parsed = match text.trim() {
        "" | "null" => Ok(SyncBody::default()),
        t => serde_json::from_str::<SyncBody>(t),
    };
    let b = parsed.map_err(|e| {
        Error::Unprocessable(format!(
            "invalid sync request (expected {{\"full\": true|false}}): {e}"
        ))
    })?;
    api.trigger_sync(b.full);
    Ok(StatusCode::NO_CONTENT)
}

async fn metrics(State(api): State<Arc<dyn AgentApi>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            crate::agent::state::metrics::CONTENT_TYPE,
        )],
        api.state().metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::http::agent_api::PlanError;
    use crate::agent::http::fake::Fake;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(plan: Result<serde_json::Value, PlanError>) -> (Router, Arc<Fake>) {
        app_with(plan, std::time::Duration::ZERO, PlanShare::default())
    }

    fn app_with(
        plan: Result<serde_json::Value, PlanError>,
        delay: std::time::Duration,
        plans: PlanShare,
    ) -> (Router, Arc<Fake>) {
        let fake = Arc::new(Fake::new(plan, delay));
        let state = fake.state.clone();
        let r = crate::server::observe(
            router_with(fake.clone(), Arc::new(plans)),
            Arc::new(move |method: &str, status: u16| state.http_request(method, status)),
        );
        (r, fake)
    }

    async fn call(r: &Router, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = r.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn sync_accepts_empty_and_full_bodies() {
        let (r, fake) = app(Ok(serde_json::json!({})));
        assert_eq!(
            call(&r, "POST", "/isymphony-sync/api/sync", "").await.0,
            204
        );
        assert_eq!(
            call(&r, "POST", "/isymphony-sync/api/sync", "{\"full\": true}")
                .await
                .0,
            204
        );
        assert_eq!(
            call(&r, "POST", "/isymphony-sync/api/sync", "{}").await.0,
            204
        );
        assert_eq!(*fake.triggers.lock().unwrap(), vec![false, true, false]);
    }

    #[tokio::test]
    async fn sync_rejects_a_bad_body_with_422() {
        let (r, fake) = app(Ok(serde_json::json!({})));
        for body in [
            "{\"full\": \"yes\"}",
            "{\"fulll\": true}",
            "[1]",
            "not json",
        ] {
            let (st, ct, text) = call(&r, "POST", "/isymphony-sync/api/sync", body).await;
            assert_eq!(st, 422, "{body}: {text}");
            assert!(ct.starts_with("application/json"));
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["status"], 422);
        }
        assert!(fake.triggers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn status_plan_metrics() {
        let (r, _) = app(Ok(serde_json::json!({"operations": []})));
        let (st, _, body) = call(&r, "GET", "/isymphony-sync/api/status", "").await;
        assert_eq!(st, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["role"], "standby");
        let (st, _, body) = call(&r, "GET", "/isymphony-sync/api/plan", "").await;
        assert_eq!(st, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["operations"], serde_json::json!([]));
        assert!(v["computed_at"].as_str().unwrap().ends_with('Z'), "{v}");
        assert!(v["age_seconds"].as_f64().unwrap() < 1.0, "{v}");
        let (st, ct, body) = call(&r, "GET", "/isymphony-sync/api/metrics", "").await;
        assert_eq!(st, 200);
        assert!(ct.starts_with("application/openmetrics-text; version=1.0.0"));
        // The two requests before this one were counted by the middleware.
        assert!(
            body.contains("isymphony_sync_http_requests_total{method=\"GET\",status=\"200\"} 2"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn concurrent_plan_requests_share_one_computation() {
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        let (r, fake) = app_with(
            Ok(serde_json::json!({"operations": []})),
            Duration::from_millis(300),
            PlanShare::new(Duration::from_millis(800)),
        );
        let reqs = (0..60).map(|_| call(&r, "GET", "/isymphony-sync/api/plan", ""));
        let answers = futures::future::join_all(reqs).await;
        assert_eq!(fake.computed.load(Ordering::SeqCst), 1);
        for (st, _, body) in &answers {
            assert_eq!(*st, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["n"], 0, "{v}");
        }
        // Soon after: the same result, with its age.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let req = axum::http::Request::get("/isymphony-sync/api/plan")
            .body(Body::empty())
            .unwrap();
        let resp = r.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.headers()["age"], "0");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["n"], 0);
        let age = v["age_seconds"].as_f64().unwrap();
        assert!((0.15..0.8).contains(&age), "{v}");
        assert_eq!(fake.computed.load(Ordering::SeqCst), 1);
        // Older than the freshness: computed again.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (_, _, body) = call(&r, "GET", "/isymphony-sync/api/plan", "").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["n"], 1, "{v}");
        assert_eq!(fake.computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_finished_pass_makes_the_shared_plan_stale() {
        use crate::agent::state::status::PassRecord;
        use crate::reconcile::PassOutcome;
        use std::sync::atomic::Ordering;
        use std::time::{Duration, SystemTime};
        let (r, fake) = app(Ok(serde_json::json!({})));
        call(&r, "GET", "/isymphony-sync/api/plan", "").await;
        call(&r, "GET", "/isymphony-sync/api/plan", "").await;
        assert_eq!(fake.computed.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = SystemTime::now();
        fake.state.record_pass(
            PassRecord {
                started: now,
                finished: now,
                result: PassOutcome::Changes,
                full: false,
                triggers: vec![],
                summary: String::new(),
                applied: 1,
                failed: 0,
                requests: Default::default(),
                warnings: vec![],
                counts_by_kind: Default::default(),
                error: None,
            },
            None,
        );
        call(&r, "GET", "/isymphony-sync/api/plan", "").await;
        assert_eq!(fake.computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn plan_errors_are_500_and_wrong_methods_405() {
        let (r, _) = app(Err(PlanError::from(Box::<
            dyn std::error::Error + Send + Sync,
        >::from("database unreachable"))));
        let (st, _, body) = call(&r, "GET", "/isymphony-sync/api/plan", "").await;
        assert_eq!(st, 500);
        assert!(body.contains("database unreachable"));
        assert_eq!(call(&r, "GET", "/isymphony-sync/api/sync", "").await.0, 405);
        assert_eq!(
            call(&r, "DELETE", "/isymphony-sync/api/status", "").await.0,
            405
        );
    }
}
