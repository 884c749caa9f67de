//! The configuration the Debian package installs as /etc/isymphony-sync/config.toml (issue 10
//! point 9): it cannot collide with an iSymphony on the same host. It syncs into the iSymphony
//! that cxpanel's settings in FreePBX name, serves the agent's own resources on a port of its
//! own, and runs no Configuration API imitation. Real binary, real MariaDB, a separate real
//! embedded server standing in for the host's iSymphony.

mod support;
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
    ];
    for (from, to) in moves {
        let quoted = format!("\"{from}\"");
        assert!(
            text.contains(&quoted),
            "the packaged config no longer names {from}"
        );
        text = text.replace(&quoted, &format!("{:?}", to.display().to_string()));
    }
    text
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
fn packaged_config_is_the_production_set_up_and_the_demo_keeps_the_imitation() {
    let cfg = Config::load(&packaged_config()).unwrap();
    assert!(
        !cfg.server.enabled,
        "the Configuration API imitation is off unless asked for"
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
    // The demo (README command 1) keeps the imitation on, with the agent resources beside it.
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
    // start an imitation there.
    assert!(
        !stderr.contains("Configuration API endpoint listening")
            && !stderr.contains("embedded endpoint not started"),
        "no imitation was started: {stderr}"
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
            .basic_auth(
                "manager",
                Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
            )
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
