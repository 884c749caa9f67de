//! Taking over from the FreePBX cxpanel module (issue 10 point 10), with the real binary, real
//! MariaDB and real embedded servers: `--check-config` says when the module's modify.php would
//! write to the iSymphony the agent manages, and which setting to change; and
//! `--adopt-cxpanel-items` takes over what the module posted but never recorded as managed.

mod common;
#[path = "common/e2e.rs"]
mod e2e;

use e2e::*;
use isymphony_sync::config::ServerConfig;
use isymphony_sync::server;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An agent config for `env`'s database; `isymphony` is the body of the `[isymphony]` section.
fn write_config(env: &Env, name: &str, isymphony: &str) -> PathBuf {
    let path = env.dir.path().join(name);
    let text = format!(
        "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n\
         [isymphony]\ntimeout = \"2s\"\n{isymphony}\n\n[sync]\nstate_dir = {:?}\n",
        env.db.url(),
        env.vm_path().display().to_string(),
        env.dir.path().join("state").display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary off the test's runtime; returns (exit code, stdout, stderr).
async fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_isymphony-sync"))
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env("RUST_LOG", "error")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// The `cxpanel` line of `--check-config`, with the exit code.
async fn cxpanel_line(config: &Path) -> (i32, String) {
    let (code, out, err) = run(config, &["--check-config"]).await;
    let line = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("cxpanel"))
        .unwrap_or_else(|| panic!("no cxpanel line in:\n{out}{err}"))
        .to_string();
    (code, line)
}

async fn set_cx(env: &Env, assignments: &str) {
    env.db
        .exec(&format!("UPDATE cxpanel_server SET {assignments};"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_detects_the_cxpanel_conflict_and_its_fix() {
    let env = Env::new(2).await;
    let port = env.server().http_addr().port();
    let cfg_path = |n: &str| env.dir.path().join(n).display().to_string();
    // cxpanel's settings name the agent's server, as "localhost".
    set_cx(&env, &format!("api_host = 'localhost', api_port = {port}")).await;

    // 1. The agent follows those settings ([isymphony] url unset): pin it first, then the port.
    let follows = write_config(&env, "follows.toml", "");
    let (code, l) = cxpanel_line(&follows).await;
    assert_eq!(code, 0, "a warning, not a failure: {l}");
    assert!(l.starts_with("warn "), "{l}");
    let want_url = format!(
        "[isymphony] url = \"http://localhost:{port}/communication_manager/api/resource/\""
    );
    assert!(l.contains(&want_url), "{l}");
    assert!(l.contains(&cfg_path("follows.toml")), "{l}");
    assert!(
        l.contains(&format!(
            "Admin > iSymphonyV3 > Server API Connection Settings > Port (cxpanel_server.api_port, now {port})"
        )),
        "{l}"
    );
    assert!(l.contains("keep Host (localhost)"), "{l}");
    assert!(!l.contains("manag3rpa55word"), "{l}");

    // 2. Pinned to the same server under another name (127.0.0.1): still the same iSymphony.
    let pinned = write_config(
        &env,
        "pinned.toml",
        &format!(
            "url = {:?}\ncore_server = \"default\"",
            env.server().base_url()
        ),
    );
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains("core server 'default', the one this agent manages"),
        "{l}"
    );
    assert!(
        l.contains(&format!("cxpanel_server.api_port, now {port}")),
        "{l}"
    );

    // 3. Another core server name on the same iSymphony still collides (server-wide objects).
    set_cx(&env, "name = 'tenant2'").await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains("core server 'tenant2' on the iSymphony this agent manages"),
        "{l}"
    );
    assert!(l.contains("server-wide administrators"), "{l}");
    set_cx(&env, "name = 'default'").await;

    // 4. The procedure: the module's API port where nothing listens. No warning left.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    set_cx(&env, &format!("api_port = {dead}")).await;
    let (code, out, err) = run(&pinned, &["--check-config"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("warn "), "{out}");
    let l = out.lines().find(|l| l.contains(" cxpanel ")).unwrap();
    assert!(
        l.starts_with("ok ") && l.contains("cannot write to iSymphony"),
        "{l}"
    );
    assert!(l.contains("does not answer"), "{l}");

    // 5. The module pointing at a different iSymphony: no conflict either.
    let other = server::start(
        &ServerConfig {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: env.dir.path().join("other-isymphony"),
            ..ServerConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    set_cx(
        &env,
        &format!(
            "api_host = '127.0.0.1', api_port = {}",
            other.http_addr().port()
        ),
    )
    .await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(
        l.starts_with("ok ") && l.contains("not to the iSymphony this agent manages"),
        "{l}"
    );

    // 6. Wrong module credentials: modify.php cannot log in, so it cannot write.
    set_cx(
        &env,
        &format!("api_host = 'localhost', api_port = {port}, api_password = 'Not-It-9'"),
    )
    .await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(
        l.starts_with("ok ") && l.contains("refuses the module's API credentials"),
        "{l}"
    );
    assert!(!l.contains("Not-It-9"), "{l}");
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_names_the_kvstore_setting_on_cxpanel_16_0_4_and_later() {
    let env = Env::new(1).await;
    let port = env.server().http_addr().port();
    env.db.load_fixture("cx_settings_kvstore.sql").await;
    env.db
        .exec(&format!(
            "INSERT INTO kvstore_FreePBX_modules_Cxpanel (`key`, val, type, id) VALUES
             ('name', 'default', NULL, 'settings_server'),
             ('api_host', '127.0.0.1', NULL, 'settings_server'),
             ('api_port', '{port}', NULL, 'settings_server'),
             ('api_username', 'manager', NULL, 'settings_server'),
             ('api_password', 'manag3rpa55word', NULL, 'settings_server'),
             ('api_use_ssl', '0', NULL, 'settings_server');"
        ))
        .await;
    let pinned = write_config(
        &env,
        "pinned.toml",
        &format!("url = {:?}", env.server().base_url()),
    );
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("warn "), "{l}");
    assert!(
        l.contains(&format!(
            "settings_server.api_port in kvstore_FreePBX_modules_Cxpanel, now {port}"
        )),
        "{l}"
    );
    // The module disabled: its hooks (modify.php too) do not run.
    env.db
        .exec("INSERT INTO modules (modulename, version, enabled) VALUES ('cxpanel', '16.0.6', 0);")
        .await;
    let (_, l) = cxpanel_line(&pinned).await;
    assert!(l.starts_with("ok ") && l.contains("disabled"), "{l}");
}
