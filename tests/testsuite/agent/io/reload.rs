//! Point 13: a reload never applies a half-written config file. The real agent, its config
//! rewritten in place the way tools do it (truncate, then write), real MariaDB behind it.

use super::agent::{http, msg, Agent};
use super::e2e::Env;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn config_text(env: &Env, debounce: &str) -> String {
    let d = env.dir.path();
    format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n\
         [freepbx]\ndatabase_url = {:?}\nvoicemail_conf = {:?}\nconfig_file = {:?}\npoll_interval = \"200ms\"\n\n\
         [sync]\ndebounce = {debounce:?}\nretry_backoff_max = \"1s\"\nstate_dir = {:?}\n",
        d.join("agent-server").display().to_string(),
        env.db.url(),
        env.vm_path().display().to_string(),
        d.join("freepbx.conf").display().to_string(),
        d.join("agent-state").display().to_string(),
    )
}

/// Rewrite in place, as `cat > file` or a tool without a rename does.
fn rewrite(path: &Path, parts: &[&str], pause: Duration) {
    let mut f = std::fs::File::create(path).unwrap();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        f.write_all(p.as_bytes()).unwrap();
        f.flush().unwrap();
    }
}

async fn get(root: &str, path: &str) -> (u16, String) {
    let r = crate::support::server::get_as_manager(&http(), format!("{root}{path}")).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn status(root: &str) -> Value {
    let (code, text) = get(root, "/isymphony-sync/api/status").await;
    assert_eq!(code, 200, "the running configuration's endpoint answers");
    serde_json::from_str(&text).unwrap()
}

fn rejected(v: &Value) -> bool {
    msg(v).starts_with("configuration reload") && v["level"] == "ERROR"
}

fn reloaded(v: &Value) -> bool {
    msg(v) == "configuration reloaded"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_cut_short_and_half_written_configs_are_not_applied() {
    let env = Env::new(2).await;
    let cfg = env.dir.path().join("agent.toml");
    let full = config_text(&env, "100ms");
    std::fs::write(&cfg, &full).unwrap();
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;

    // 0 bytes (the first moment of any in-place rewrite).
    rewrite(&cfg, &[""], Duration::ZERO);
    let e = agent.wait_nth(0, T, rejected).await;
    assert!(e["error"].as_str().unwrap().contains("empty"), "{e}");
    let st = status(&root).await;
    assert!(
        st["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("the file is empty"),
        "{st}"
    );
    assert_eq!(st["role"], "leader", "{st}");
    // SIGHUP on the empty file: rejected the same way.
    agent.signal(libc::SIGHUP);
    agent.wait_nth(1, T, rejected).await;

    // Cut short at a line end inside the last line: valid TOML, but without [sync] state_dir.
    let cut = full.trim_end_matches('\n');
    let cut = &cut[..cut.rfind('\n').unwrap()];
    assert!(isymphony_sync::config::Config::parse(cut).is_ok());
    rewrite(&cfg, &[cut], Duration::ZERO);
    let e = agent.wait_nth(2, T, rejected).await;
    assert!(e["error"].as_str().unwrap().contains("line break"), "{e}");
    let st = status(&root).await;
    assert!(
        st["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("cut short"),
        "{st}"
    );
    let (_, metrics) = get(&root, "/isymphony-sync/api/metrics").await;
    assert!(
        metrics.contains("isymphony_sync_config_reloads_total{result=\"invalid\"} 3"),
        "{metrics}"
    );
    assert_eq!(agent.count(reloaded), 0, "{}", agent.dump());

    // Written in two pieces 150 ms apart; the first piece alone is complete-looking, valid
    // TOML (all but [sync]). Only the whole file is applied, once.
    let changed = config_text(&env, "150ms");
    let split = changed.find("[sync]").unwrap();
    assert!(isymphony_sync::config::Config::parse(&changed[..split]).is_ok());
    rewrite(
        &cfg,
        &[&changed[..split], &changed[split..]],
        Duration::from_millis(150),
    );
    agent.wait_nth(0, T, reloaded).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(agent.count(reloaded), 1, "{}", agent.dump());
    assert_eq!(agent.count(rejected), 3, "{}", agent.dump());
    let st = status(&root).await;
    assert!(st["last_reload_error"].is_null(), "{st}");
    assert_eq!(st["role"], "leader", "{st}");
    // The endpoint never moved: [server] was the same in every applied version.
    assert_eq!(agent.count(|v| msg(v).starts_with("agent resources at")), 1);
}
