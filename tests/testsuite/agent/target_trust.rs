//! Credentials go only where the operator said. Whoever can write cxpanel's
//! settings in FreePBX's database chooses the target when the TOML names none: the TOML's
//! password is never sent there (a password without a URL is a configuration error), and a
//! change of the database-named host is warned about and shown on the status page. Real
//! binary, real MariaDB, real listeners on loopback.

use crate::support;
use support::agent;
use support::e2e;

use base64::Engine;
use e2e::*;
use isymphony_sync::config::ServerConfig;
use isymphony_sync::secret::Secret;
use isymphony_sync::server::{self, ServerHandle};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOML_PW: &str = "Toml-Secret-9";
const CX_PW: &str = "Cx-Api-Pw-7";

/// A listener that records what it is sent and answers 401.
async fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let mut buf = vec![0u8; 16 * 1024];
            let n = c.read(&mut buf).await.unwrap_or(0);
            s2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = c
                .write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    (port, seen)
}

async fn name_in_cxpanel(env: &Env, host: &str, port: u16) {
    env.db
        .exec(&format!(
            "UPDATE cxpanel_server SET name = 'default', api_host = '{host}', api_port = {port}, \
             api_username = 'manager', api_password = '{CX_PW}', api_use_ssl = 0;"
        ))
        .await;
}

fn basic(pw: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("manager:{pw}"))
}

fn dry_run(cfg: &Path) -> std::process::Output {
    support::process::bin()
        .arg("--config")
        .arg(cfg)
        .args(["--dry-run"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toml_password_never_goes_to_a_host_the_database_names() {
    let env = Env::new(2).await;
    let (port, seen) = recorder().await;
    name_in_cxpanel(&env, "127.0.0.1", port).await;
    let base = format!(
        "[server]\nenabled = false\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\n",
        env.db.url(),
        env.vm_path().display().to_string(),
    );
    let cfg = env.dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!("{base}[isymphony]\npassword = \"{TOML_PW}\"\n"),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || dry_run(&cfg)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let sent = seen.lock().unwrap().join("\n");
    assert!(
        !sent.contains(&basic(TOML_PW)),
        "the TOML password went to the database-named listener: {sent}"
    );
    assert!(
        stderr.contains("isymphony.password is set but isymphony.url is not"),
        "a config error: {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains(TOML_PW), "{stderr}");

    // Without it, that host gets cxpanel's own login, as cxpanel's module sends it.
    std::fs::write(&cfg, &base).unwrap();
    let out = tokio::task::spawn_blocking(move || dry_run(&cfg))
        .await
        .unwrap();
    let sent = seen.lock().unwrap().join("\n");
    assert!(
        sent.contains(&basic(CX_PW)),
        "{sent}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn separate_server(dir: &Path, ip: &str) -> ServerHandle {
    let cfg = ServerConfig {
        http_listen: format!("{ip}:0").parse().unwrap(),
        data_dir: dir.join(format!("isymphony-{ip}")),
        password: Secret::new(CX_PW),
        ..ServerConfig::default()
    };
    server::start(&cfg, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_database_host_is_warned_and_shown_on_the_status_page() {
    let env = Env::new(2).await;
    let a = separate_server(env.dir.path(), "127.0.0.1").await;
    let b = separate_server(env.dir.path(), "127.0.0.2").await;
    name_in_cxpanel(&env, "127.0.0.1", a.http_addr().port()).await;
    let agent_pw = "Agent-Port-Pw-3";
    let cfg = env.dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nenabled = false\nagent_listen = \"127.0.0.1:0\"\npassword = \"{agent_pw}\"\n\
             data_dir = {:?}\n\n[freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\n\
             poll_interval = \"200ms\"\n\n[sync]\ndebounce = \"100ms\"\n\
             retry_backoff_max = \"1s\"\n",
            env.dir.path().join("data").display().to_string(),
            env.db.url(),
            env.vm_path().display().to_string(),
        ),
    )
    .unwrap();
    let daemon = agent::Agent::spawn(&cfg, &[]);
    let root = daemon.endpoint(0).await;
    daemon
        .wait_log(Duration::from_secs(30), |v| {
            agent::msg(v).starts_with("pass:")
        })
        .await;
    assert!(a.stats().post > 0, "{}", daemon.dump());

    name_in_cxpanel(&env, "127.0.0.2", b.http_addr().port()).await;
    let changed = "changed from 127.0.0.1 to 127.0.0.2";
    daemon
        .wait_log(Duration::from_secs(30), |v| agent::msg(v).contains(changed))
        .await;
    let (st, status) = agent::get_text(&root, "/isymphony-sync/api/status", agent_pw).await;
    assert_eq!(st, 200);
    assert!(status.contains(changed), "{status}");
    let (st, page) = agent::get_text(&root, "/isymphony-sync/", agent_pw).await;
    assert_eq!(st, 200);
    assert!(page.contains(changed), "the status page shows it");

    // Still shown after a later pass (the change itself is not repeated in the log).
    let passes = daemon.count(|v| agent::msg(v).starts_with("pass:"));
    agent::sync_now(&root, agent_pw).await;
    daemon
        .wait_nth(passes, Duration::from_secs(30), |v| {
            agent::msg(v).starts_with("pass:")
        })
        .await;
    let (_, page) = agent::get_text(&root, "/isymphony-sync/", agent_pw).await;
    assert!(page.contains(changed), "kept on the status page");
    assert_eq!(daemon.count(|v| agent::msg(v).contains(changed)), 1);
}
