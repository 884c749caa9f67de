//! The page through its router, with a fake agent (the browser test drives a real one).

use super::*;
use crate::agent::http::fake::Fake;
use crate::agent::state::status::PassRecord;
use crate::agent::state::AgentState;
use crate::model::Kind;
use crate::reconcile::PassOutcome;
use axum::body::Body;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use std::sync::atomic::Ordering;
use std::time::{Duration as D, SystemTime};
use tower::ServiceExt;

fn app() -> (Router, Arc<Fake>, String) {
    app_with(serde_json::json!({"plan": {"operations": [
        {"kind": "extension", "key": "1001", "description": "+ create extension 1001 \"Alice\""},
        {"kind": "extension", "description": "+ create extension 1002 \"Bob <b>\""},
        {"kind": "user", "description": "~ update user alice: password *** -> ***"},
    ], "warnings": ["held: + create user bob: no licence"]}}))
}

fn app_with(plan: serde_json::Value) -> (Router, Arc<Fake>, String) {
    let fake = Arc::new(Fake::new(Ok(plan), D::ZERO));
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
    assert!(body.contains(
        r#"<tr data-kind="extension"><td>extension</td><td class="count"><a href="/isymphony-sync/explain/extension">7</a></td>"#
    ), "{body}");
    // A plan line links to its object's page when the plan names the key.
    assert!(
        body.contains(r#"Alice&quot; <a class="explain" href="/isymphony-sync/explain/extension/1001">explain</a>"#),
        "{body}"
    );
    // The search box is outside the live part, which is swapped every two seconds.
    assert!(body.contains(r#"<form id="search" method="get" action="/isymphony-sync/explain">"#));
    assert!(
        body.contains("not checked yet (after a pass that applies changes"),
        "{body}"
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

/// One object's page: the sections of `--explain`, every foreign value escaped, passwords as
/// the explanation masked them, no script, the page's policy.
#[tokio::test]
async fn object_page_shows_the_explanation_escaped() {
    let (r, _, _) = app();
    let (code, h, body) = call(&r, get("/isymphony-sync/explain/extension/1001")).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["content-security-policy"], page_csp());
    for section in [
        "<h1 id=\"title\">extension 1001</h1>",
        "FreePBX <span class=\"muted\">(cxpanel &lt;em&gt;tables&lt;/em&gt;)</span>",
        "Desired in iSymphony",
        "Held by iSymphony",
        "configured but not live",
        "NOT live: its user &lt;script&gt;alert(5)&lt;/script&gt; is a lite user",
        "<td>password</td><td class=\"op\">***</td><td class=\"op\">***</td>",
        "read: Configuration API",
        // The search box is filled in with the object.
        r#"<option value="extension" selected>extension</option>"#,
        r#"name="key" value="1001""#,
    ] {
        assert!(body.contains(section), "{section} not in {body}");
    }
    for raw in [
        "<script",
        "<img",
        "<svg",
        "<iframe",
        "<i>",
        "<u>",
        "<em>",
        "</pre><script",
        "<a href=x",
    ] {
        assert!(!body.contains(raw), "{raw} unescaped in {body}");
    }
    assert!(body.contains("&lt;iframe src=javascript:alert(6)&gt;"));
    assert!(
        body.contains(r#"<p id="last-written">last written by the pass of 2026-12-06T04:12:03Z (&lt;i&gt;create&lt;/i&gt;)</p>"#),
        "{body}"
    );
    assert!(
        body.contains("id <code>&quot;&gt;&lt;svg onload=alert(4)&gt;</code>, owner: agent"),
        "{body}"
    );
}

/// An unknown key (itself hostile) is 404 with the closest keys linked, each escaped and its
/// link percent-encoded.
#[tokio::test]
async fn unknown_object_lists_the_closest_keys_as_links() {
    let (r, _, _) = app();
    let (code, _, body) = call(&r, get("/isymphony-sync/explain/extension/100%3Cb%3E")).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("extension 100&lt;b&gt; is unknown"), "{body}");
    assert!(
        body.contains(r#"<a class="obj" href="/isymphony-sync/explain/extension/1001">1001</a>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"href="/isymphony-sync/explain/extension/10%3Cb%3E0%3C/b%3E3">10&lt;b&gt;0&lt;/b&gt;3</a>"#),
        "{body}"
    );
    assert!(!body.contains("<b>"), "{body}");
    // Not KIND/KEY, an unknown kind.
    let (code, _, body) = call(&r, get("/isymphony-sync/explain/extension/a%0Ab")).await;
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = call(&r, get("/isymphony-sync/explain/%3Cscript%3E/1")).await;
    assert_eq!(code, 404);
    assert!(
        body.contains("&quot;&lt;script&gt;&quot; is not a kind") && !body.contains("<script"),
        "{body}"
    );
}

#[tokio::test]
async fn the_search_box_leads_to_the_object_page() {
    let (r, _, _) = app();
    for (query, to) in [
        (
            "kind=extension&key=1001",
            "/isymphony-sync/explain/extension/1001",
        ),
        (
            "kind=user&key=+al+ice%3C%3E+",
            "/isymphony-sync/explain/user/al%20ice%3C%3E",
        ),
        (
            "kind=user&key=queue%2F400",
            "/isymphony-sync/explain/queue/400",
        ),
        (
            "kind=conference_room&key=",
            "/isymphony-sync/explain/conference_room",
        ),
        ("kind=user&key=a%2Fb", "/isymphony-sync/explain/user/a/b"),
    ] {
        let (code, h, _) = call(&r, get(&format!("/isymphony-sync/explain?{query}"))).await;
        assert_eq!(
            (code, h["location"].to_str().unwrap()),
            (303, to),
            "{query}"
        );
    }
    let (code, _, body) = call(&r, get("/isymphony-sync/explain?kind=pbx&key=1")).await;
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = call(&r, get("/isymphony-sync/explain")).await;
    assert_eq!(code, 200);
    assert!(body.contains("id=\"search\""));
    // A kind's page links each object FreePBX knows.
    let (code, _, body) = call(&r, get("/isymphony-sync/explain/queue")).await;
    assert_eq!(code, 200);
    assert!(
        body.contains(r#"<a class="obj" href="/isymphony-sync/explain/queue/1002">1002</a>"#),
        "{body}"
    );
    assert!(body.contains(">10&lt;b&gt;0&lt;/b&gt;3</a>"), "{body}");
}

/// One explanation at a time: a second request waits, then gets 503 with Retry-After; the
/// first is answered, and only one was computed meanwhile.
#[tokio::test(start_paused = true)]
async fn a_second_explanation_waits_then_gets_503() {
    let (r, fake, _) = app();
    *fake.explain_delay.lock().unwrap() = explain::EXPLAIN_WAIT * 3;
    let first = call(&r, get("/isymphony-sync/explain/extension/1001"));
    let second = async {
        tokio::time::sleep(D::from_millis(10)).await;
        call(&r, get("/isymphony-sync/explain/extension/1002")).await
    };
    let ((c1, _, b1), (c2, h2, b2)) = tokio::join!(first, second);
    assert_eq!(c1, 200, "{b1}");
    assert_eq!(c2, 503, "{b2}");
    assert_eq!(h2["retry-after"], "5");
    assert!(b2.contains("another explanation is being computed"), "{b2}");
    assert_eq!(fake.explained.load(Ordering::SeqCst), 1);
    // Once the first is done, the next one runs.
    *fake.explain_delay.lock().unwrap() = D::ZERO;
    let (c3, _, _) = call(&r, get("/isymphony-sync/explain/extension/1002")).await;
    assert_eq!(c3, 200);
}

/// The readiness card: per kind the count, the objects linked (hostile keys escaped), or
/// "unknown" with the reason.
#[tokio::test]
async fn readiness_card_names_and_links_what_is_not_live() {
    use crate::explain::readiness::Readiness;
    let (r, fake, _) = app();
    let not_live = std::collections::BTreeMap::from([
        (
            Kind::Extension,
            vec![
                "1001".to_string(),
                "<img src=x onerror=alert(1)>".to_string(),
            ],
        ),
        (Kind::Queue, vec![]),
    ]);
    fake.state.set_readiness(Readiness::Known {
        at: SystemTime::now(),
        not_live,
    });
    let (_, _, body) = call(&r, get("/isymphony-sync/live")).await;
    assert!(
        body.contains(
            r#"<tr data-kind="extension"><td>extension</td><td class="count bad">2</td>"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"<a class="obj" href="/isymphony-sync/explain/extension/1001">1001</a>, "#),
        "{body}"
    );
    assert!(body.contains("href=\"/isymphony-sync/explain/extension/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\">&lt;img"), "{body}");
    assert!(
        body.contains(r#"<td class="count ok">0</td><td><span class="ok">all live</span>"#),
        "{body}"
    );
    assert!(!body.contains("<img"), "{body}");
    fake.state.set_readiness(Readiness::Unknown {
        at: SystemTime::now(),
        reason: "the target has no Live API (<b>404</b>)".into(),
    });
    let (_, _, body) = call(&r, get("/isymphony-sync/live")).await;
    assert!(
        body.contains("unknown: the target has no Live API (&lt;b&gt;404&lt;/b&gt;)"),
        "{body}"
    );
}
