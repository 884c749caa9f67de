//! The client's TLS rules (issue 4, point 1) against the embedded server's HTTPS listener:
//! certificates are verified by default, `ca_file` adds a CA, `tls_verify = false` turns
//! verification off.

use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::config::ServerConfig;
use isymphony_sync::secret::Secret;
use serde_json::Value;

#[tokio::test]
async fn tls_is_verified_unless_told_otherwise() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let cfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        https_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        data_dir: dir.path().join("data"),
        ..ServerConfig::default()
    };
    let server = isymphony_sync::server::start(&cfg, None).await.unwrap();
    let port = server.https_addr().unwrap().port();
    let url = format!("https://localhost:{port}/communication_manager/api/resource/");
    let client = |verify: bool, ca: Option<std::path::PathBuf>| {
        let mut c = ClientConfig::new(
            &url,
            "manager",
            Secret::new(isymphony_sync::config::DEFAULT_API_PASSWORD),
        );
        c.tls_verify = verify;
        c.ca_file = ca;
        c.max_attempts = 1;
        Client::new(&c).unwrap()
    };

    let e = client(true, None)
        .get::<Value>("server/coreServers")
        .await
        .unwrap_err();
    assert!(
        e.is_unreachable(),
        "a self-signed certificate must be refused: {e}"
    );
    let ok: Vec<Value> = client(true, Some(cert))
        .get("server/coreServers")
        .await
        .unwrap();
    assert!(ok.is_empty());
    let ok: Vec<Value> = client(false, None).get("server/coreServers").await.unwrap();
    assert!(ok.is_empty());
    server.shutdown().await;
}
