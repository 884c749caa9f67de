//! Point 8: `ca_file` holding a certificate made by `openssl req -x509` (which marks it
//! `CA:TRUE`) is accepted as the server's own certificate; chains to a CA in `ca_file` keep
//! the usual checks; a refused certificate says what to put in `ca_file`.

use super::e2e::Env;
use super::{run_bin, with_config};
use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::config::ServerConfig;
use isymphony_sync::secret::Secret;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed certificate the way administrators make one: `openssl req -x509`.
fn self_signed(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
    );
    (dir.join(cert), dir.join(key))
}

/// A server certificate for `san` signed by the CA `ca`.
fn signed_by(dir: &Path, ca: &str, name: &str, san: &str) -> (PathBuf, PathBuf) {
    let (cert, key, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("basicConstraints=CA:FALSE\nsubjectAltName={san}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &cert,
            "-extfile",
            &ext,
        ],
    );
    (dir.join(cert), dir.join(key))
}

async fn https_server(dir: &Path, cert: &Path, key: &Path) -> isymphony_sync::server::ServerHandle {
    let cfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        https_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(cert.to_path_buf()),
        tls_key: Some(key.to_path_buf()),
        data_dir: dir.join(format!("data-{}", rand::random::<u32>())),
        ..ServerConfig::default()
    };
    isymphony_sync::server::start(&cfg, None).await.unwrap()
}

fn client(url: &str, ca: Option<&Path>) -> Client {
    let mut c = ClientConfig::new(
        url,
        "manager",
        Secret::new(isymphony_sync::config::DEFAULT_API_PASSWORD),
    );
    c.ca_file = ca.map(Path::to_path_buf);
    c.max_attempts = 1;
    Client::new(&c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_self_signed_certificate_in_ca_file_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The name does not match the address used: a pinned certificate is the identity.
    let (cert, key) = self_signed(d, "isymphony", "isymphony.example");
    let text = openssl(d, &["x509", "-in", "isymphony.pem", "-noout", "-text"]);
    assert!(
        text.contains("CA:TRUE"),
        "openssl req -x509 made no CA:TRUE certificate:\n{text}"
    );
    let server = https_server(d, &cert, &key).await;
    let port = server.https_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}/communication_manager/api/resource/");

    let ok: Vec<Value> = client(&url, Some(&cert))
        .get("server/coreServers")
        .await
        .expect("the pinned self-signed certificate is accepted");
    assert!(ok.is_empty());

    // Without ca_file: refused, and the message says what to put where.
    let e = client(&url, None)
        .get::<Value>("server/coreServers")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not trusted") && e.contains("[isymphony] ca_file"),
        "{e}"
    );
    assert!(
        e.contains(&format!("openssl s_client -connect 127.0.0.1:{port}")),
        "{e}"
    );
    assert!(e.contains("tls_verify = false is not needed"), "{e}");

    // Another self-signed certificate in ca_file: refused, naming the file.
    let (other, _) = self_signed(d, "other", "isymphony.example");
    let e = client(&url, Some(&other))
        .get::<Value>("server/coreServers")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&other.display().to_string()) && e.contains("neither in"),
        "{e}"
    );

    // --check-config, the binary, real MariaDB: ok with ca_file, FAIL with the hint without.
    let env = Env::new(1).await;
    let write = |name: &str, ca: Option<&Path>| {
        let p = env.dir.path().join(name);
        let ca = ca.map_or(String::new(), |c| {
            format!("ca_file = {:?}\n", c.display().to_string())
        });
        std::fs::write(
            &p,
            format!(
                "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
                 [isymphony]\nurl = {url:?}\ntimeout = \"3s\"\n{ca}",
                env.db.url(),
                env.vm_path().display().to_string()
            ),
        )
        .unwrap();
        p
    };
    let (code, out, err) = run_bin(
        with_config(&write("pinned.toml", Some(&cert)), &["--check-config"]),
        "error",
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok") && l.contains("isymphony") && l.contains("iSymphony")),
        "{out}"
    );
    let (code, out, _) = run_bin(
        with_config(&write("unpinned.toml", None), &["--check-config"]),
        "error",
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let line = out.lines().find(|l| l.contains(" isymphony ")).unwrap();
    assert!(
        line.starts_with("FAIL") && line.contains("[isymphony] ca_file"),
        "{out}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_in_ca_file_still_checks_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, _) = self_signed(d, "ca", "Test CA");
    let (good, good_key) = signed_by(d, "ca", "good", "IP:127.0.0.1");
    let (wrong, wrong_key) = signed_by(d, "ca", "wrong", "DNS:elsewhere.example");

    let server = https_server(d, &good, &good_key).await;
    let port = server.https_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}/communication_manager/api/resource/");
    let ok: Vec<Value> = client(&url, Some(&ca))
        .get("server/coreServers")
        .await
        .unwrap();
    assert!(ok.is_empty());
    server.shutdown().await;

    // Signed by the CA, but for another name: refused (only pinned certificates skip names).
    let server = https_server(d, &wrong, &wrong_key).await;
    let port = server.https_addr().unwrap().port();
    let url = format!("https://127.0.0.1:{port}/communication_manager/api/resource/");
    let e = client(&url, Some(&ca))
        .get::<Value>("server/coreServers")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not valid for name") || e.contains("NotValidForName"),
        "{e}"
    );
    assert!(e.contains("ca_file"), "{e}");
    server.shutdown().await;
}
