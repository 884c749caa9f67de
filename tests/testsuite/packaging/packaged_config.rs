//! The configuration the Debian package installs as /etc/isymphony-sync/config.toml:
//! it cannot collide with an iSymphony on the same host. It syncs into the iSymphony
//! that cxpanel's settings in FreePBX name, serves the agent's own resources on a port of its
//! own, and runs no embedded endpoint. Real binary, real MariaDB, a separate real
//! embedded server standing in for the host's iSymphony.

use crate::support;
use support::agent;
use support::e2e;

use e2e::*;
use isymphony_sync::config::{AgentListen, Config, ServerConfig};
use isymphony_sync::reconcile::{run_pass, PassOptions};
use isymphony_sync::secret::Secret;
use isymphony_sync::server::{self, ServerHandle};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The password of the separate server; only cxpanel's settings know it.
const CX_API_PW: &str = "Cx-Api-Pw-7";

/// The file Cargo.toml's `package.metadata.deb` installs as /etc/isymphony-sync/config.toml.
fn packaged_config() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let assets = cargo["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap();
    let src = assets
        .iter()
        .find(|a| a[1].as_str() == Some("etc/isymphony-sync/config.toml"))
        .expect("the package installs /etc/isymphony-sync/config.toml")[0]
        .as_str()
        .unwrap();
    root.join(src)
}

/// The packaged config with its paths (and only its paths) moved into `dir`.
fn packaged_with_paths_in(dir: &Path, vm: &Path) -> String {
    let mut text = std::fs::read_to_string(packaged_config()).unwrap();
    let moves = [
        ("/etc/freepbx.conf", dir.join("freepbx.conf")),
        ("/etc/amportal.conf", dir.join("amportal.conf")),
        ("/etc/asterisk/voicemail.conf", vm.to_path_buf()),
        ("/var/lib/isymphony-sync", dir.join("data")),
        (
            "/etc/isymphony-sync/agent-password",
            dir.join("agent-password"),
        ),
    ];
    for (from, to) in moves {
        let quoted = format!("\"{from}\"");
        assert!(
            text.contains(&quoted),
            "the packaged config no longer names {from}"
        );
        text = text.replace(&quoted, &format!("{:?}", to.display().to_string()));
    }
    postinst_password(&dir.join("agent-password"));
    text
}

/// Run the package's postinst the way it makes the agent port's password (its `new_password`
/// function, group root here: the test machine has no isymphony-sync group); the password.
fn postinst_password(file: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(". \"$0\"; new_password \"$1\" root")
        .arg(root.join("debian/postinst"))
        .arg(file)
        .status()
        .unwrap();
    assert!(st.success(), "postinst's new_password failed");
    std::fs::read_to_string(file).unwrap().trim().to_string()
}

/// freepbx.conf pointing at the test database.
fn write_freepbx_conf(dir: &Path, db: &str) {
    let o = support::server_opts();
    std::fs::write(
        dir.join("freepbx.conf"),
        format!(
            "<?php\n$amp_conf['AMPDBUSER'] = '{}';\n$amp_conf['AMPDBPASS'] = '{}';\n\
             $amp_conf['AMPDBHOST'] = '{}';\n$amp_conf['AMPDBPORT'] = '{}';\n\
             $amp_conf['AMPDBNAME'] = '{db}';\n$amp_conf['AMPDBENGINE'] = 'mysql';\n",
            o.user().unwrap_or("root"),
            o.pass().unwrap_or(""),
            o.ip_or_hostname(),
            o.tcp_port(),
        ),
    )
    .unwrap();
}

/// A second embedded server (the host's "real" iSymphony), with a password of its own.
async fn separate_server(dir: &Path) -> ServerHandle {
    let cfg = ServerConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("isymphony"),
        password: Secret::new(CX_API_PW),
        ..ServerConfig::default()
    };
    server::start(&cfg, None).await.unwrap()
}

/// cxpanel's stored settings name `srv` (host, port, credentials, core server `default`).
async fn point_cxpanel_at(env: &Env, srv: &ServerHandle) {
    env.db
        .exec(&format!(
            "UPDATE cxpanel_server SET name = 'default', api_host = '127.0.0.1', api_port = {}, \
             api_username = 'manager', api_password = '{CX_API_PW}', api_use_ssl = 0;",
            srv.http_addr().port()
        ))
        .await;
}

#[test]
fn packaged_config_is_the_production_set_up_and_the_demo_keeps_the_embedded_endpoint() {
    let cfg = Config::load(&packaged_config()).unwrap();
    assert!(
        !cfg.server.enabled,
        "the embedded endpoint is off unless asked for"
    );
    match cfg.server.agent_endpoint() {
        AgentListen::Own(a) => {
            assert_eq!(a, "127.0.0.1:58081".parse().unwrap());
            assert!(![58080, 55050].contains(&a.port()), "iSymphony's ports");
        }
        other => panic!("agent resources must have a port of their own: {other:?}"),
    }
    // No [isymphony] url: the target is what cxpanel's settings name.
    assert!(cfg.isymphony.url.is_none());
    // The demo (README command 1) keeps the embedded endpoint on, with the agent resources beside it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = Config::load(&root.join("examples/demo.toml")).unwrap();
    assert!(demo.server.enabled);
    assert_eq!(demo.server.agent_endpoint(), AgentListen::WithApi);
    assert_eq!(demo.server.http_listen, "127.0.0.1:58080".parse().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_with_the_packaged_config_sees_the_server_cxpanel_names() {
    let env = Env::new(3).await;
    let sep = separate_server(env.dir.path()).await;
    point_cxpanel_at(&env, &sep).await;
    // That server already holds what an earlier sync put there.
    let mut direct = env.cfg.clone();
    direct.isymphony.url = Some(sep.base_url());
    direct.isymphony.password = Some(Secret::new(CX_API_PW));
    run_pass(&direct, &PassOptions::default()).await.unwrap();
    env.db
        .exec("UPDATE users SET name = 'Alice Cooper' WHERE extension = '1001';")
        .await;

    let dir = env.dir.path().join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    write_freepbx_conf(&dir, &env.db.name);
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, packaged_with_paths_in(&dir, &env.vm_path())).unwrap();

    let before = sep.stats();
    let out = tokio::task::spawn_blocking(move || {
        support::process::bin()
            .arg("--config")
            .arg(&cfg)
            .args(["--dry-run", "--output", "json"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let port = sep.http_addr().port().to_string();
    assert!(
        v["target"].as_str().unwrap().contains(&format!(":{port}/")),
        "{v}"
    );
    // The plan is against that server's state: one rename, nothing to create.
    let ops: Vec<&str> = v["plan"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["description"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(
            &"~ update extension 1001: displayName \"Alice Smith\" -> \"Alice Cooper\", agentName \"Alice Smith\" -> \"Alice Cooper\""
        ),
        "{ops:#?}"
    );
    assert!(ops.iter().all(|o| !o.starts_with('+')), "{ops:#?}");
    // Nor tried: on a host where iSymphony owns 58080 that would fail, elsewhere it would
    // start an embedded endpoint there.
    assert!(
        !stderr.contains("Configuration API endpoint listening")
            && !stderr.contains("embedded endpoint not started"),
        "no embedded endpoint was started: {stderr}"
    );
    let after = sep.stats();
    assert_eq!(
        (after.post, after.put, after.delete),
        (before.post, before.put, before.delete)
    );
    assert!(after.get > before.get, "the dry run read that server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_with_the_packaged_config_syncs_where_cxpanel_says_and_serves_its_own_port() {
    let env = Env::new(3).await;
    let sep = separate_server(env.dir.path()).await;
    point_cxpanel_at(&env, &sep).await;
    let dir = env.dir.path().join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    write_freepbx_conf(&dir, &env.db.name);
    // Besides the paths, only the agent port moves (to a free one: tests run side by side).
    let text = packaged_with_paths_in(&dir, &env.vm_path());
    assert!(text.contains("agent_listen = \"127.0.0.1:58081\""));
    let text = text.replace(
        "agent_listen = \"127.0.0.1:58081\"",
        "agent_listen = \"127.0.0.1:0\"",
    );
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, text).unwrap();

    let agent_pw = std::fs::read_to_string(dir.join("agent-password")).unwrap();
    let agent_pw = agent_pw.trim().to_string();
    let daemon = agent::Agent::spawn(&cfg, &[]);
    let root = daemon.endpoint(0).await;
    let sep_url = sep.base_url();
    let synced = agent::eventually(Duration::from_secs(30), || {
        let url = sep_url.clone();
        async move {
            let api = isymphony_sync::api::client::Client::new(
                &isymphony_sync::api::client::ClientConfig::new(
                    url,
                    "manager".to_string(),
                    Secret::new(CX_API_PW),
                ),
            )
            .unwrap();
            let Ok(cs) = api
                .get::<isymphony_sync::api::types::CoreServer>(
                    isymphony_sync::api::paths::core_server_by_slug("default"),
                )
                .await
            else {
                return false;
            };
            let exts: Vec<isymphony_sync::api::types::Extension> = api
                .get(isymphony_sync::api::paths::extensions(&cs.id.unwrap()))
                .await
                .unwrap_or_default();
            exts.len() == 3
        }
    })
    .await;
    assert!(
        synced,
        "the service did not sync into cxpanel's iSymphony:\n{}",
        daemon.dump()
    );

    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{root}{path}"))
            .basic_auth("manager", Some(&agent_pw))
            .send()
    };
    let status = get("/isymphony-sync/api/status").await.unwrap();
    assert_eq!(status.status(), 200);
    let st: serde_json::Value = status.json().await.unwrap();
    assert_eq!(st["role"], "leader", "{st}");
    // The agent's port is not an iSymphony: no Configuration API there.
    let api = get("/communication_manager/api/resource/server/brand")
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert!(
        daemon.count(|v| agent::msg(v).contains("Configuration API endpoint listening")) == 0,
        "{}",
        daemon.dump()
    );
    assert!(!root.ends_with(":58081"), "the test moved the port");
}

/// A packaged install has a random password for the agent's port, readable
/// only by root and the service group, kept across upgrades.
#[test]
fn postinst_generates_a_private_random_password_and_keeps_it() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let pw = postinst_password(&a);
    assert!(pw.len() >= 24, "{} characters", pw.len());
    assert_ne!(pw, isymphony_sync::config::DEFAULT_API_PASSWORD);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    let m = std::fs::metadata(&a).unwrap();
    assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o640, 0, 0));
    assert_eq!(postinst_password(&a), pw, "an upgrade keeps it");
    assert_ne!(postinst_password(&b), pw, "one per install");
    // The packaged config reads it.
    let text = packaged_with_paths_in(dir.path(), &dir.path().join("vm.conf"));
    let cfg = Config::parse(&text).unwrap();
    let generated = std::fs::read_to_string(dir.path().join("agent-password")).unwrap();
    assert_eq!(cfg.server.password.expose(), generated.trim());
    assert_eq!(cfg.server.start_refusal(), None);
}

/// Start the service with `text` as its config; Err(stderr) when it exits at once.
async fn start_service(dir: &Path, text: &str) -> Result<agent::Agent, String> {
    let cfg = dir.join("svc.toml");
    std::fs::write(&cfg, text).unwrap();
    let mut daemon = agent::Agent::spawn(&cfg, &[]);
    for _ in 0..100 {
        if daemon.count(|v| agent::msg(v).starts_with("agent resources at")) > 0 {
            return Ok(daemon);
        }
        if daemon.child.try_wait().unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(daemon.dump());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("neither started nor refused: {}", daemon.dump());
}

/// The documented factory password is refused outside the demo set-up, with
/// a message saying how to set one; the demo keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_refuses_the_factory_password_outside_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = format!(
        "[freepbx]\ndatabase_url = \"mysql://root@127.0.0.1:1/x\"\nvoicemail_conf = {:?}\n\
         config_file = {:?}\n[sync]\nstate_dir = {:?}\n",
        d.join("vm.conf").display().to_string(),
        d.join("freepbx.conf").display().to_string(),
        d.join("state").display().to_string(),
    );
    let prod = format!(
        "[server]\nenabled = false\nagent_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{base}",
        d.join("data").display().to_string()
    );
    let refused = start_service(d, &prod).await.err().expect("refused");
    assert!(
        refused.contains("factory default") && refused.contains("password_file"),
        "{refused}"
    );
    assert!(!refused.contains(isymphony_sync::config::DEFAULT_API_PASSWORD));
    // A password file that cannot be read: refused too, naming it.
    let missing = prod.replace(
        "[server]\n",
        &format!(
            "[server]\npassword_file = {:?}\n",
            d.join("nope").display().to_string()
        ),
    );
    let refused = start_service(d, &missing).await.err().expect("refused");
    assert!(
        refused.contains("cannot read server.password_file"),
        "{refused}"
    );
    // The demo set-up (the embedded endpoint on) keeps the seed's default credentials.
    let demo = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n{base}",
        d.join("demo").display().to_string()
    );
    let daemon = start_service(d, &demo).await.expect("the demo starts");
    drop(daemon);
}
