//! Point 7: credentials in `[isymphony] url` never appear in plans (text, JSON),
//! `--check-config`, logs, status, metrics or the agent's state file; text from the database
//! and from servers is shown with control characters escaped.

use super::agent::{http, msg, Agent};
use super::e2e::Env;
use super::limits::{fake_peer, response};
use super::{assert_no_control, run_bin, with_config};
use isymphony_sync::config::ServerConfig;
use isymphony_sync::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

const URL_USER: &str = "url-user";
const URL_PW: &str = "Url-Pw-7731";

fn config(env: &Env, name: &str, server: bool, isymphony: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let p = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[server]\nenabled = {server}\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n\
             [freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\npoll_interval = \"200ms\"\n\n\
             [isymphony]\n{isymphony}\ntimeout = \"3s\"\n\n[sync]\nstate_dir = {:?}\ndebounce = \"100ms\"\n",
            dir.join("server").display().to_string(),
            env.db.url(),
            env.vm_path().display().to_string(),
            dir.join("state").display().to_string(),
        ),
    )
    .unwrap();
    p
}

fn assert_secret_free(text: &str, what: &str) {
    assert!(
        !text.contains(URL_PW),
        "{what} shows the URL password:\n{text}"
    );
    assert!(
        !text.contains(&format!("{URL_USER}@")),
        "{what} shows the URL userinfo:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_shown_nowhere() {
    let env = Env::new(3).await;
    // A target that accepts only the credentials written into the URL.
    let data = env.dir.path().join("target-data");
    let target = isymphony_sync::server::start(
        &ServerConfig {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data,
            username: URL_USER.into(),
            password: Secret::new(URL_PW),
            ..ServerConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    let port = target.http_addr().port();
    let url =
        format!("http://{URL_USER}:{URL_PW}@127.0.0.1:{port}/communication_manager/api/resource/");
    let shown = format!("http://127.0.0.1:{port}/communication_manager/api/resource/");
    let cfg = config(&env, "once", false, &format!("url = {url:?}"));

    // Plans: text (exit 2: changes pending, so the URL's credentials worked) and JSON.
    let (code, out, err) = run_bin(with_config(&cfg, &["--dry-run"]), "trace").await;
    assert_eq!(code, 2, "{out}{err}");
    assert_secret_free(&out, "--dry-run");
    assert_secret_free(&err, "--dry-run trace log");
    let (code, out, err) = run_bin(
        with_config(&cfg, &["--dry-run", "--output", "json"]),
        "debug",
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert_secret_free(&out, "--dry-run --output json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["target"], format!("{shown} (core server default)"));

    // --check-config.
    let (code, out, err) = run_bin(with_config(&cfg, &["--check-config"]), "debug").await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{shown} as {URL_USER}")), "{out}");
    assert_secret_free(&out, "--check-config");
    assert_secret_free(&err, "--check-config log");

    // The daemon: trace logs, status, metrics, and the state file it writes.
    let cfg = config(&env, "daemon", true, &format!("url = {url:?}"));
    let agent = Agent::spawn(&cfg, &[("RUST_LOG", "trace")]);
    let root = agent.endpoint(0).await;
    agent
        .wait_log(Duration::from_secs(30), |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    for path in ["/isymphony-sync/api/status", "/isymphony-sync/api/metrics"] {
        let r = crate::support::server::get_as_manager(&http(), format!("{root}{path}")).await;
        assert_eq!(r.status(), 200);
        assert_secret_free(&r.text().await.unwrap(), path);
    }
    assert_secret_free(&agent.dump(), "daemon trace log");
    let state_dir = env.dir.path().join("daemon/state");
    for f in std::fs::read_dir(&state_dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert_secret_free(&String::from_utf8_lossy(&bytes), "agent state file");
    }
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_and_server_text_is_printed_with_control_characters_escaped() {
    let env = Env::new(2).await;
    // A name in FreePBX with a newline that would forge a log line and an ANSI escape.
    env.db
        .exec("UPDATE users SET name = CONCAT('Evil', CHAR(10), '2026-12-01T00:00:00Z ERROR forged', CHAR(27), '[2J') WHERE extension = '1001'")
        .await;
    let url = env.server().base_url();
    let cfg = config(&env, "names", false, &format!("url = {url:?}"));
    let (code, out, err) =
        run_bin(with_config(&cfg, &["--sync-now"]), "isymphony_sync=debug").await;
    assert_eq!(code, 0, "{out}{err}");
    assert_no_control(&out, "--sync-now plan");
    assert_no_control(&err, "--sync-now debug log");
    let line = out
        .lines()
        .find(|l| l.contains("Evil"))
        .unwrap_or_else(|| panic!("{out}"));
    // Quoted as JSON strings are (`\u001b`), or escaped as elsewhere (`\x1b`).
    assert!(
        line.contains("Evil\\n2026-12-01T00:00:00Z ERROR forged\\u001b[2J"),
        "{line}"
    );
    // The name itself reached iSymphony unchanged: escaping is for display only.
    let ext = env
        .extensions()
        .await
        .into_iter()
        .find(|x| x.extension == "1001")
        .unwrap();
    assert_eq!(
        ext.display_name,
        "Evil\n2026-12-01T00:00:00Z ERROR forged\u{1b}[2J"
    );

    // MariaDB quotes a database name back in its error message.
    let evil_db = format!(
        "{}/evil%0AERROR%20forged%1B%5B2J",
        crate::support::server_url()
    );
    let p = env.dir.path().join("evil-db.toml");
    std::fs::write(
        &p,
        format!(
            "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {evil_db:?}\nvoicemail_conf = {:?}\n\n[isymphony]\nurl = {url:?}\n",
            env.vm_path().display().to_string()
        ),
    )
    .unwrap();
    let (code, out, _) = run_bin(with_config(&p, &["--check-config"]), "error").await;
    assert_eq!(code, 1, "{out}");
    assert_no_control(&out, "--check-config");
    let line = out
        .lines()
        .find(|l| l.contains(" database "))
        .unwrap_or_else(|| panic!("{out}"));
    // The name as configured, and as MariaDB quotes it back (it writes ESC as `\001B`).
    assert!(
        line.starts_with("FAIL") && line.contains("evil\\nERROR forged\\x1b[2J"),
        "{out}"
    );
    assert!(
        line.contains("Unknown database 'evil\\nERROR forged"),
        "{out}"
    );

    // A FAKE server whose error message holds a forged line and an escape sequence.
    let body = r#"{"status":503,"message":"down\n2026-12-01T00:00:00Z INFO pass: in sync \u001b]0;owned\u0007"}"#;
    let (fake, _) = fake_peer(response("503 Service Unavailable", "", body)).await;
    let p = config(&env, "fake", false, &format!("url = {fake:?}"));
    let (code, out, _) = run_bin(with_config(&p, &["--check-config"]), "error").await;
    assert_eq!(code, 1, "{out}");
    assert_no_control(&out, "--check-config against the fake");
    assert!(
        out.contains("down\\n2026-12-01T00:00:00Z INFO pass: in sync \\x1b]0;owned\\x07"),
        "{out}"
    );
    let (code, out, err) = run_bin(with_config(&p, &["--sync-now"]), "info").await;
    assert_eq!(code, 1, "{out}{err}");
    assert_no_control(&out, "--sync-now against the fake");
    assert_no_control(&err, "--sync-now stderr against the fake");
    assert!(err.contains("down\\n2026"), "{err}");
}
