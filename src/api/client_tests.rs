//! Unit tests of the API client: its URLs and `Authorization` header against reqwest's own,
//! retries, the 409 confirmation, an unreachable server and a bad CA file.

use super::*;

#[test]
fn the_authorization_made_once_is_the_one_reqwest_makes() {
    for (user, pass) in [
        ("manager", "manager"),
        ("ops", "p:a:ss w0rd"),
        ("zoë", "pässwörd 北京"),
        ("", ""),
    ] {
        let ours = basic_authorization(user, &Secret::new(pass)).unwrap();
        let theirs = reqwest::Client::new()
            .get("http://127.0.0.1/")
            .basic_auth(user, Some(pass))
            .build()
            .unwrap();
        let theirs = &theirs.headers()[reqwest::header::AUTHORIZATION];
        assert_eq!(ours.as_bytes(), theirs.as_bytes(), "{user}");
        assert!(ours.is_sensitive());
    }
}

#[test]
fn a_request_url_is_the_base_and_the_path_parsed_together() {
    for base in [
        "http://127.0.0.1:58080/communication_manager/api/resource/",
        "https://isy.example/x/",
    ] {
        let c = Client::new(&ClientConfig::new(base, "u", Secret::new("p"))).unwrap();
        for path in [
            "server/coreServers",
            "/core/cs1/users/u%201/contact",
            "asterisk/cs/extensions?noHash=true&x=1",
            "core/cs/users/a b/é?q=a b",
            "core/cs/users/../../etc",
            "core/./cs//users/",
            "core/cs/users/%2e%2e/x#frag",
            "core/cs/users/x?a=1#f?g",
            "core/cs/users/x#f#g",
        ] {
            let parsed = reqwest::Url::parse(&format!("{base}{}", path.trim_start_matches('/')));
            assert_eq!(c.url_of(path), parsed.unwrap(), "{base} {path}");
        }
    }
}
use axum::extract::State;
use axum::http::StatusCode as S;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;

#[derive(Clone, Default)]
struct Mock {
    hits: Arc<AtomicUsize>,
    exists: Arc<std::sync::atomic::AtomicBool>,
}

async fn serve(router: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, router).await.unwrap();
    });
    format!("http://{addr}/communication_manager/api/resource/")
}

fn cfg(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, "manager", Secret::new("pw-xyz"));
    c.backoff_base = Duration::from_millis(1);
    c
}

#[tokio::test]
async fn retries_5xx_then_succeeds_and_counts() {
    let m = Mock::default();
    let r = Router::new()
        .route(
            "/communication_manager/api/resource/server/brand",
            get(|State(m): State<Mock>| async move {
                if m.hits.fetch_add(1, Ordering::SeqCst) < 2 {
                    (S::SERVICE_UNAVAILABLE, "busy".to_string())
                } else {
                    (S::OK, r#"{"version":"3.5","build":"1"}"#.to_string())
                }
            }),
        )
        .with_state(m.clone());
    let c = Client::new(&cfg(&serve(r).await)).unwrap();
    let b: crate::api::types::Brand = c.get("server/brand").await.unwrap();
    assert_eq!(b.version, "3.5");
    assert_eq!(c.counts().get, 3);
}

#[tokio::test]
async fn gives_up_after_bounded_attempts_and_does_not_retry_4xx() {
    let r = Router::new()
        .route(
            "/communication_manager/api/resource/a",
            get(|| async { (S::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/communication_manager/api/resource/b",
            get(|| async { (S::FORBIDDEN, r#"{"status":403,"message":"nope"}"#) }),
        );
    let c = Client::new(&cfg(&serve(r).await)).unwrap();
    let e = c.get::<Value>("a").await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(c.counts().get, 4);
    let e = c.get::<Value>("b").await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(e.to_string().contains("nope"), "{e}");
    assert_eq!(c.counts().get, 5);
    assert!(c.get_opt::<Value>("missing").await.unwrap().is_none());
}

#[tokio::test]
async fn post_409_is_done_when_our_object_exists() {
    let m = Mock::default();
    let r = Router::new()
        .route(
            "/communication_manager/api/resource/things",
            axum::routing::post(|State(m): State<Mock>| async move {
                if m.exists.swap(true, Ordering::SeqCst) {
                    S::CONFLICT
                } else {
                    S::NO_CONTENT
                }
            }),
        )
        .route(
            "/communication_manager/api/resource/things/abc",
            get(|State(m): State<Mock>| async move {
                if m.exists.load(Ordering::SeqCst) {
                    (S::OK, r#"{"id":"abc"}"#)
                } else {
                    (S::NOT_FOUND, "")
                }
            }),
        )
        .with_state(m.clone());
    let c = Client::new(&cfg(&serve(r).await)).unwrap();
    let body = serde_json::json!({"id":"abc"});
    let confirm = Confirm::Get("things/abc".into());
    assert_eq!(
        c.post("things", &body, Some(&confirm)).await.unwrap(),
        Posted::Created
    );
    assert_eq!(
        c.post("things", &body, Some(&confirm)).await.unwrap(),
        Posted::AlreadyThere
    );
    // Without a confirmation path the 409 stays an error.
    assert_eq!(
        c.post("things", &body, None).await.unwrap_err().status(),
        Some(409)
    );
    // A 409 for an object that is not ours stays an error too.
    let other = Confirm::Get("things/zzz".into());
    assert!(c.post("things", &body, Some(&other)).await.is_err());
    // A binding: the 409 is success only when the bound object is the one we sent.
    let ours = Confirm::GetHasField {
        path: "things/abc".into(),
        field: "id".into(),
        value: "abc".into(),
    };
    assert_eq!(
        c.post("things", &body, Some(&ours)).await.unwrap(),
        Posted::AlreadyThere
    );
    let theirs = Confirm::GetHasField {
        path: "things/abc".into(),
        field: "id".into(),
        value: "someone-else".into(),
    };
    assert!(c.post("things", &body, Some(&theirs)).await.is_err());
}

#[tokio::test]
async fn connection_refused_is_unreachable_and_hides_credentials() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut c = cfg(&format!(
        "http://someone:topsecret@127.0.0.1:{port}/communication_manager/api/resource/"
    ));
    c.max_attempts = 2;
    assert!(!format!("{c:?}").contains("topsecret"));
    let c = Client::new(&c).unwrap();
    assert!(!c.base_url().contains("topsecret"));
    let e = c.get::<Value>("server/brand").await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert!(!e.to_string().contains("topsecret"));
    assert_eq!(c.counts().get, 2);
}

#[test]
fn bad_ca_file_is_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, "not a certificate").unwrap();
    let mut c = cfg("https://127.0.0.1:1/x/");
    c.ca_file = Some(p);
    assert!(matches!(Client::new(&c), Err(ApiError::Setup(_))));
}
