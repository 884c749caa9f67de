//! HTTPS: the same routes and rules over rustls with a certificate generated in the test, and
//! a clear error for unusable certificate files.

use crate::support;

use reqwest::StatusCode;
use serde_json::json;
use support::server::*;

#[tokio::test]
async fn https_serves_the_same_tree_with_the_same_rules() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();

    let t = start_with(
        |c| {
            c.https_listen = Some("127.0.0.1:0".parse().unwrap());
            c.tls_cert = Some(cert_path.clone());
            c.tls_key = Some(key_path.clone());
        },
        None,
    )
    .await;
    let addr = t.handle.https_addr().expect("https listener");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let base = format!(
        "https://localhost:{}/communication_manager/rest/config/",
        addr.port()
    );

    let r = client
        .get(format!("{base}server/coreServers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .post(format!("{base}server/coreServers/"))
        .basic_auth(USER, Some(PASS))
        .json(&json!({"slug": "default", "name": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let url = format!("{base}server/coreServers/getBySlug/default");
    assert_core_server_at(&client, url, "default").await;
    // The plain HTTP listener sees the same store.
    let (s, v) = t.get("server/coreServers").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    t.handle.shutdown().await;
}

#[tokio::test]
async fn bad_tls_files_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let mut cfg = config(dir.path());
    cfg.https_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.tls_cert = Some(cert.clone());
    cfg.tls_key = Some(dir.path().join("missing-key.pem"));
    let err = isymphony_sync::server::start(&cfg, None)
        .await
        .err()
        .expect("start must fail")
        .to_string();
    assert!(err.contains("TLS") && err.contains("cert.pem"), "{err}");
}
