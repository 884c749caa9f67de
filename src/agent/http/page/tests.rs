//! The page through its router, with a fake agent (the browser test drives a real one).

use super::*;
use crate::agent::http::agent_api::PlanFuture;
use crate::agent::state::status::PassRecord;
use crate::agent::state::AgentState;
use crate::reconcile::PassOutcome;
use axum::body::Body;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use std::sync::Mutex;
use std::time::{Duration as D, SystemTime};
use tower::ServiceExt;

struct Fake {
    state: AgentState,
    triggers: Mutex<Vec<bool>>,
    plan: serde_json::Value,
}

impl AgentApi for Fake {
    fn state(&self) -> &AgentState {
        &self.state
    }
    fn trigger_sync(&self, full: bool) {
        self.triggers.lock().unwrap().push(full);
    }
    fn plan(&self) -> PlanFuture<'_> {
        Box::pin(async { Ok(self.plan.clone()) })
    }
}

fn app() -> (Router, Arc<Fake>, String) {
    app_with(serde_json::json!({"plan": {"operations": [
        {"kind": "extension", "description": "+ create extension 1001 \"Alice\""},
        {"kind": "extension", "description": "+ create extension 1002 \"Bob <b>\""},
        {"kind": "user", "description": "~ update user alice: password *** -> ***"},
    ], "warnings": ["held: + create user bob: no licence"]}}))
}

fn app_with(plan: serde_json::Value) -> (Router, Arc<Fake>, String) {
    let fake = Arc::new(Fake {
        state: AgentState::new(),
        triggers: Mutex::new(vec![]),
        plan,
    });
    let st = PageState::new(fake.clone(), Arc::new(PlanShare::default()));
    let token = st.token.to_string();
    // With the cross-site guard the agent's router puts around every route.
    let r = router(st).layer(axum::middleware::from_fn(crate::agent::http::csrf::guard));
    (r, fake, token)
}

async fn call(r: &Router, req: axum::http::Request<Body>) -> (u16, HeaderMap, String) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn get(path: &str) -> axum::http::Request<Body> {
    axum::http::Request::get(path).body(Body::empty()).unwrap()
}

fn post(body: &str, origin: Option<&str>) -> axum::http::Request<Body> {
    let mut b = axum::http::Request::post("/isymphony-sync/sync")
        .header("host", "127.0.0.1:58081")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        b = b.header("origin", o);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn record(state: &AgentState, result: PassOutcome, error: Option<&str>) {
    let now = SystemTime::now();
    state.record_pass(
        PassRecord {
            started: now - D::from_millis(420),
            finished: now,
            result,
            full: true,
            triggers: vec![crate::agent::run::scheduler::TriggerSource::Api],
            summary: "applied 2 of 2 operations, 0 failed".into(),
            applied: 2,
            failed: 0,
            requests: crate::api::client::RequestCounts {
                get: 12,
                post: 2,
                put: 0,
                delete: 0,
            },
            warnings: vec!["safety valve withheld 3 deletions: extension".into()],
            counts_by_kind: [(crate::model::Kind::Extension, 7u64)]
                .into_iter()
                .collect(),
            error: error.map(str::to_string),
        },
        Some(D::from_millis(900)),
    );
}

#[tokio::test]
async fn page_shows_passes_counts_plan_warnings_and_charts() {
    let (r, fake, token) = app();
    record(&fake.state, PassOutcome::Changes, None);
    record(
        &fake.state,
        PassOutcome::Failed,
        Some("FreePBX unreadable: refused"),
    );
    let (st, h, body) = call(&r, get("/isymphony-sync")).await;
    assert_eq!(st, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(h["cache-control"], "no-store");
    // No external assets: nothing is loaded from another place.
    assert!(
        !body.contains("src=\"http") && !body.contains("href=\"http"),
        "{body}"
    );
    assert!(body.contains(&format!("name=\"token\" value=\"{token}\"")));
    assert!(
        body.contains(r#"<tr data-kind="extension"><td>extension</td><td class="count">7</td>"#)
    );
    assert!(body.contains("<summary>extension (2)</summary>"), "{body}");
    assert!(body.contains("<summary>user (1)</summary>"));
    assert!(body.contains("Bob &lt;b&gt;"), "escaped: {body}");
    assert!(body.contains("password *** -&gt; ***"));
    assert!(body.contains("safety valve withheld 3 deletions"));
    assert!(body.contains("held: + create user bob"));
    // Newest pass first; a failed pass shows its message; requests total 14.
    let failed = body.find("FreePBX unreadable: refused").unwrap();
    let ok = body.find("applied 2 of 2 operations").unwrap();
    assert!(failed < ok);
    assert!(body.contains("<td>14</td><td>0.42 s</td>"), "{body}");
    assert_eq!(
        body.matches("<circle").count(),
        2 + 2,
        "two passes, two latencies"
    );
    // The live part alone is the same HTML the page embeds.
    let (st, _, live) = call(&r, get("/isymphony-sync/live")).await;
    assert_eq!(st, 200);
    assert!(live.contains(r#"id="passes""#) && !live.contains("<html"));
}

#[tokio::test]
async fn buttons_need_the_token_and_the_same_origin() {
    let (r, fake, token) = app();
    let good = format!("token={token}&full=1");
    let (st, h, _) = call(&r, post(&good, Some("http://127.0.0.1:58081"))).await;
    assert_eq!(st, 303);
    assert_eq!(h["location"], "/isymphony-sync/");
    let (st, _, _) = call(&r, post(&format!("token={token}&full=0"), None)).await;
    assert_eq!(st, 303);
    assert_eq!(*fake.triggers.lock().unwrap(), vec![true, false]);
    let (st, _, body) = call(&r, post(&good, Some("http://evil.example"))).await;
    assert_eq!(st, 422, "{body}");
    assert!(
        body.contains("another site") && body.contains("status page"),
        "{body}"
    );
    // Another port of the same host is another origin.
    let (st, _, _) = call(&r, post(&good, Some("http://127.0.0.1:58082"))).await;
    assert_eq!(st, 422);
    for bad in ["full=1", "token=00&full=1", ""] {
        let (st, _, body) = call(&r, post(bad, Some("http://127.0.0.1:58081"))).await;
        assert_eq!(st, 422, "{bad}: {body}");
        assert!(body.contains("reload the status page"), "{body}");
    }
    assert_eq!(fake.triggers.lock().unwrap().len(), 2);
}

/// Every value from outside (a FreePBX name in the plan, error messages from MariaDB, from
/// iSymphony or from a pass, a lock holder's name) is shown as text, never as markup.
#[tokio::test]
async fn hostile_values_are_shown_escaped() {
    let (r, fake, _) = app_with(serde_json::json!({"plan": {"operations": [
        {"kind": "extension",
         "description": "+ create extension 1003 \"<script>alert(1)</script>\""},
        {"kind": "<b>kind</b>\" onclick=\"alert(2)", "description": "x"},
    ], "warnings": ["<img src=x onerror=alert(3)>"],
       "adoptions": [{"description": "\" onmouseover=\"alert(4)"}]}}));
    let st = &fake.state;
    record(
        st,
        PassOutcome::Failed,
        Some("<img src=x onerror=alert(5)>"),
    );
    st.set_freepbx(false, Some("<script>alert(6)</script>".into()));
    st.set_isymphony(false, Some("<iframe src=javascript:alert(7)>".into()));
    st.reload_failed("</ul><script>alert(8)</script>".into());
    st.set_target_change("<svg onload=alert(9)>".into());
    st.set_role(
        crate::agent::leader::election::Role::Standby,
        Some("lock<i>'\"".into()),
    );
    st.set_lock_check(crate::agent::state::status::LockCheck {
        warnings: vec!["held by <script>alert(10)</script>".into()],
        ..Default::default()
    });
    let (code, _, body) = call(&r, get("/isymphony-sync")).await;
    assert_eq!(code, 200);
    for raw in [
        "<script>alert",
        "<img",
        "<iframe",
        "<svg onload",
        "<b>kind",
        "<i>",
        "</ul><script",
        "onclick=\"",
        "onmouseover=\"",
    ] {
        assert!(!body.contains(raw), "{raw} unescaped in {body}");
    }
    for shown in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        r#"data-kind="&lt;b&gt;kind&lt;/b&gt;&quot; onclick=&quot;alert(2)""#,
        "warning: &lt;img src=x onerror=alert(3)&gt;",
        "to adopt: &quot; onmouseover=&quot;alert(4)",
        "&lt;img src=x onerror=alert(5)&gt;",
        "last error: &lt;script&gt;alert(6)&lt;/script&gt;",
        "last error: &lt;iframe src=javascript:alert(7)&gt;",
        "configuration not reloaded: &lt;/ul&gt;&lt;script&gt;alert(8)&lt;/script&gt;",
        ": &lt;svg onload=alert(9)&gt;</li>",
        "lock lock&lt;i&gt;'&quot;:",
        "held by &lt;script&gt;alert(10)&lt;/script&gt;",
    ] {
        assert!(body.contains(shown), "{shown} not in {body}");
    }
    // The page's own script is the only one.
    assert_eq!(body.matches("<script").count(), 1, "{body}");
}
