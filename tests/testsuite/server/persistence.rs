//! The real binary in `--serve-only` mode: acknowledged writes survive `kill -9`, a second
//! process on the same data_dir is refused, SIGTERM exits 0, and CLI/config errors are clear.

use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;

use crate::support;
use support::process;

use process::spawn_server as spawn;

fn write_config(dir: &Path) -> std::path::PathBuf {
    process::write_serve_config(dir, &dir.join("data"))
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut child, base) = spawn(&config);
    let c = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        c.post(format!("{base}{path}"))
            .basic_auth(
                "manager",
                Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
            )
            .json(&body)
            .send()
    };
    let r = post(
        "server/coreServers",
        json!({"id": "cs1", "slug": "default", "name": "d"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for n in 0..50 {
        let r = post(
            "asterisk/cs1/extensions",
            json!({"id": format!("e{n}"), "extension": format!("{}", 1000 + n)}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    // A second process on the same data_dir must refuse to start.
    let out = support::process::bin()
        .args(["--serve-only", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another"), "{err}");

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, base) = spawn(&config);
    let r = support::server::get_as_manager(&c, format!("{base}asterisk/cs1/extensions")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 50);
    assert_eq!(list[49]["extension"], json!("1049"));

    // SIGTERM: graceful stop with exit code 0.
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn missing_or_invalid_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = support::process::bin()
        .args(["--serve-only", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not found") && err.contains("nope.toml"),
        "{err}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nhttp_listn = \"x\"\n").unwrap();
    let out = support::process::bin()
        .args(["--serve-only", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http_listn") && err.contains("bad.toml"),
        "{err}"
    );

    // An unwritable data_dir is named in the error.
    let ro = dir.path().join("ro.toml");
    std::fs::write(
        &ro,
        "[server]\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"/proc/isymphony-sync-test\"\n",
    )
    .unwrap();
    let out = support::process::bin()
        .args(["--serve-only", "--config"])
        .arg(&ro)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refusal exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data_dir /proc/isymphony-sync-test"), "{err}");
}

#[test]
fn help_and_version() {
    let out = support::process::bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--serve-only") && help.contains("--config"),
        "{help}"
    );
    let out = support::process::bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
