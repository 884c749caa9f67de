//! The embedded Configuration API over real HTTP: status codes, authentication and limits, the
//! ACL before credentials, extra routes behind the same gate, a restart in process.

use crate::support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::server::*;

#[tokio::test]
async fn status_codes_auth_and_limits() {
    let t = start_with(|c| c.max_body_bytes = 4096, None).await;
    let url = format!("{}server/coreServers", t.base);
    // No credentials: 401 with the realm challenge.
    let r = t.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"iSymphony\"");
    // Wrong credentials: 403.
    let r = t
        .client
        .get(&url)
        .basic_auth(USER, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = t
        .client
        .get(&url)
        .basic_auth("other", Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Content-Type on bodiless GET and DELETE is fine (the helper always sends it).
    expect(t.get("server/coreServers").await, 200, "");
    expect(t.delete("server/coreServers/none").await, 404, "");
    // Unknown path, wrong method, wrong prefix.
    expect(t.get("server/nothing").await, 404, "");
    expect(t.get("asterisk/x/extensions/y/z/w").await, 404, "");
    expect(
        t.req(Method::PATCH, "server/coreServers", Some(json!({})))
            .await,
        405,
        "",
    );
    expect(t.delete("server/coreServers").await, 405, "");
    let r = t
        .client
        .get(format!(
            "http://{}/communication_manager/other/x",
            t.handle.http_addr()
        ))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Malformed JSON, non-object, empty body: 412.
    expect(
        t.post("server/coreServers", Value::String("{".into()))
            .await,
        412,
        "",
    );
    let r = t
        .client
        .post(&url)
        .basic_auth(USER, Some(PASS))
        .body("{\"slug\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = t
        .client
        .post(&url)
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    expect(
        t.post("server/coreServers", json!([1, 2])).await,
        412,
        "object",
    );
    // Body over the limit: 413.
    let big = json!({"slug": "s", "name": "x".repeat(5000)});
    expect(t.post("server/coreServers", big).await, 413, "");
    // Stats count every request by method.
    let s = t.handle.stats();
    assert!(
        s.get >= 5 && s.post >= 4 && s.delete >= 2 && s.other >= 1,
        "{s:?}"
    );
    assert_eq!(s.total(), s.get + s.post + s.put + s.delete + s.other);
    t.handle.shutdown().await;
}

#[tokio::test]
async fn acl_is_checked_before_credentials() {
    // A peer outside the ACL is closed at accept: no answer at all, with or
    // without credentials, and never a challenge.
    let t = start_with(|c| c.acl = vec!["10.0.0.0/8".parse().unwrap()], None).await;
    let url = format!("{}server/coreServers", t.base);
    for auth in [None, Some(PASS), Some("wrong")] {
        let mut r = t.client.get(&url);
        if let Some(p) = auth {
            r = r.basic_auth(USER, Some(p));
        }
        let e = r.send().await.expect_err("a refused peer got an answer");
        assert!(!e.is_status(), "auth {auth:?}: {e}");
    }
    assert_eq!(t.handle.stats().total(), 0, "a refused request was read");
    assert!(t.handle.conn_stats().refused_acl >= 3);
    t.handle.shutdown().await;
}

#[tokio::test]
async fn extra_routes_sit_behind_the_same_gate() {
    let extra = axum::Router::new().route(
        "/isymphony-sync/status",
        axum::routing::get(|| async { "ok" }),
    );
    let t = start_with(|c| c.realm = "Agent".into(), Some(extra)).await;
    let url = format!("http://{}/isymphony-sync/status/", t.handle.http_addr());
    let r = t.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"Agent\"");
    let r = t
        .client
        .get(&url)
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ok");
    t.handle.shutdown().await;
}

#[tokio::test]
async fn restart_in_process_keeps_data_and_second_instance_is_refused() {
    let t = start().await;
    let cs = t.core_server("default").await;
    t.post_204(
        &format!("asterisk/{cs}/extensions"),
        json!({"id": "e1", "extension": "1"}),
    )
    .await;
    let mut cfg = config(t.dir.path());
    let e = isymphony_sync::server::start(&cfg, None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("in use by another"), "{e}");
    cfg.http_listen = t.handle.http_addr();
    let busy = isymphony_sync::server::start(&cfg, None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(busy.contains("address already in use"), "{busy}");
    let dir = t.dir;
    t.handle.shutdown().await;
    let handle = isymphony_sync::server::start(&config(dir.path()), None)
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}asterisk/{cs}/extensions/e1", handle.base_url()))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    handle.shutdown().await;
}
