//! The client's TLS rules against the embedded server's HTTPS listener:
//! certificates are verified by default, `ca_file` adds a CA, `tls_verify = false` turns
//! verification off. The second test does the same through the config file and the binary
//! (`--sync-now`), with a refusal that names the certificate file.

use crate::support;

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

/// `[isymphony] tls_verify` and `ca_file` as an administrator sets them: in the config file,
/// for the real binary's `--sync-now` against the embedded server's HTTPS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_and_ca_file_through_the_config_file_and_the_binary() {
    let env = support::e2e::Env::new(2).await;
    let d = env.dir.path();
    let pem = |name: &str| {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (d.join(format!("{name}.pem")), d.join(format!("{name}.key")));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        (cert, key)
    };
    let (cert, key) = pem("server");
    let (other, _) = pem("other");
    let cfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        https_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(cert.clone()),
        tls_key: Some(key),
        data_dir: d.join("https-data"),
        ..ServerConfig::default()
    };
    let server = isymphony_sync::server::start(&cfg, None).await.unwrap();
    let port = server.https_addr().unwrap().port();
    let url = format!("https://localhost:{port}/communication_manager/api/resource/");
    let run = |name: &str, tls: String| {
        let path = d.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
                 [isymphony]\nurl = {url:?}\ntimeout = \"5s\"\n{tls}\n[sync]\nstate_dir = {:?}\n",
                env.db.url(),
                env.vm_path().display().to_string(),
                d.join(format!("state-{name}")).display().to_string(),
            ),
        )
        .unwrap();
        let mut cmd = support::process::with_config(&path, &["--sync-now"]);
        cmd.env("NO_COLOR", "1").env("RUST_LOG", "warn");
        async {
            let out = support::process::run_off_runtime(cmd).await;
            (out.code, out.text())
        }
    };
    let ca = |p: &std::path::Path| format!("ca_file = {:?}\n", p.display().to_string());

    // Verified by default: refused, and the refusal says what to put in ca_file.
    let (code, out) = run("default", String::new()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("not trusted") && out.contains("[isymphony] ca_file"),
        "{out}"
    );
    // Another certificate in ca_file: refused, naming that file.
    let (code, out) = run("other", ca(&other)).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("ca_file {}", other.display())),
        "the refusal names the certificate file: {out}"
    );
    // The server's certificate in ca_file: the pass runs.
    let (code, out) = run("pinned", ca(&cert)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("applied"), "{out}");
    // tls_verify = false: accepted without ca_file (already in sync now).
    let (code, out) = run("noverify", "tls_verify = false\n".to_string()).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("in sync"), "{out}");
    server.shutdown().await;
}
