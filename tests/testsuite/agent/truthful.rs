//! Metrics and messages tell the truth, with the real binary, real
//! MariaDB and real sockets:
//! - a change that converges only after failed passes and a retry is observed by
//!   `isymphony_sync_change_to_converged_seconds`, with the outage in its time;
//! - the status shows the README's words for a wrong database password and an unreachable
//!   database server, never the driver's;
//! - a pass cut short by SIGTERM logs its summary line;
//! - a pass after a reload says `reload` in its triggers.

use crate::support;
use support::agent;
use support::e2e;
use support::http_proxy;

use agent::*;
use e2e::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PW: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;
const T: Duration = Duration::from_secs(15);

/// An agent config with its embedded endpoint (for status and metrics) syncing to `url`.
fn config(env: &Env, name: &str, db_url: &str, url: &str, extra_sync: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{d}/server\"\npassword = \"{PW}\"\n\n\
         [freepbx]\ndatabase_url = \"{db_url}\"\nconfig_file = \"{d}/none.conf\"\n\
         amportal_conf = \"{d}/none-amportal.conf\"\nvoicemail_conf = \"{vm}\"\npoll_interval = \"200ms\"\n\n\
         [isymphony]\nurl = \"{url}\"\nusername = \"manager\"\npassword = \"{PW}\"\ntimeout = \"30s\"\n\n\
         [sync]\ndebounce = \"100ms\"\nretry_backoff_max = \"1s\"\nstate_dir = \"{d}/state\"\n{extra_sync}",
        d = dir.display(),
        vm = env.vm_path().display(),
    );
    let p = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn db_url(env: &Env) -> String {
    format!("{}/{}", support::server_url(), env.db.name)
}

async fn get(root: &str, path: &str) -> String {
    http()
        .get(format!("{root}{path}"))
        .basic_auth("manager", Some(PW))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn status(root: &str) -> serde_json::Value {
    serde_json::from_str(&get(root, "/isymphony-sync/api/status").await).unwrap()
}

/// `_count` and `_sum` of the change-to-converged histogram.
async fn latency(root: &str) -> (u64, f64) {
    let m = get(root, "/isymphony-sync/api/metrics").await;
    let val = |name: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{m}"))
    };
    (
        val("isymphony_sync_change_to_converged_seconds_count") as u64,
        val("isymphony_sync_change_to_converged_seconds_sum"),
    )
}

async fn ext_name(env: &Env, ext: &str) -> Option<String> {
    let api = &env.api;
    let cs: isymphony_sync::api::types::CoreServer = api
        .get(isymphony_sync::api::paths::core_server_by_slug("default"))
        .await
        .ok()?;
    let exts: Vec<isymphony_sync::api::types::Extension> = api
        .get(isymphony_sync::api::paths::extensions(&cs.id?))
        .await
        .ok()?;
    exts.into_iter()
        .find(|x| x.extension == ext)
        .map(|x| x.display_name)
}

/// Wait until iSymphony shows extension 1001 as `name`; on timeout, panic with the agent's log.
async fn named_1001(env: &Env, agent: &Agent, name: &str) {
    assert!(
        eventually(T, || async {
            ext_name(env, "1001").await.as_deref() == Some(name)
        })
        .await,
        "{}",
        agent.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_converged_after_failed_passes_is_observed_with_its_outage() {
    let env = Env::new(2).await;
    let proxy = Proxy::start(env.server().http_addr()).await;
    let url = format!("http://{}/communication_manager/api/resource/", proxy.addr);
    let agent = Agent::spawn(&config(&env, "l", &db_url(&env), &url, ""), &[]);
    let root = agent.endpoint(0).await;
    named_1001(&env, &agent, "Alice Smith").await;
    // One change converged at once: one observation.
    env.db
        .exec("UPDATE users SET name = 'Quick One' WHERE extension = '1001'")
        .await;
    assert!(eventually(T, || async { latency(&root).await.0 == 1 }).await);
    let (_, quick_sum) = latency(&root).await;

    // iSymphony answers 503: passes fail and are retried; then it recovers.
    proxy.set(Mode::Error503);
    let failed_before = agent.count(|v| msg(v).starts_with("pass:") && v["result"] != "success");
    let changed = Instant::now();
    env.db
        .exec("UPDATE users SET name = 'Slow One' WHERE extension = '1001'")
        .await;
    assert!(
        eventually(T, || async {
            agent.count(|v| msg(v).starts_with("pass:") && v["result"] != "success")
                >= failed_before + 2
        })
        .await,
        "{}",
        agent.dump()
    );
    proxy.set(Mode::Up);
    named_1001(&env, &agent, "Slow One").await;
    let outage = changed.elapsed().as_secs_f64();
    assert!(
        eventually(T, || async { latency(&root).await.0 == 2 }).await,
        "the change that converged after failed passes is observed: {:?}\n{}",
        latency(&root).await,
        agent.dump()
    );
    let (_, sum) = latency(&root).await;
    let slow = sum - quick_sum;
    eprintln!("change converged after failed passes: observed {slow:.2} s (outage {outage:.2} s)");
    // Detected within a poll of the change, converged after the outage: about the outage.
    assert!(
        slow >= outage - 1.0 && slow <= outage + 1.0,
        "{slow} vs {outage}"
    );
    let m = get(&root, "/isymphony-sync/api/metrics").await;
    let help = m
        .lines()
        .find(|l| l.starts_with("# HELP isymphony_sync_change_to_converged_seconds"))
        .unwrap();
    assert!(help.contains("detected"), "{help}");
    assert!(help.contains("retries"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_readme_messages_for_database_errors() {
    let env = Env::new(1).await;
    let url = env.server().base_url();
    let o = support::server_opts();
    // A wrong password for a real user, and a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let target = format!(
        "{}@{}:{}/{}",
        o.user().unwrap_or("root"),
        o.ip_or_hostname(),
        o.tcp_port(),
        env.db.name
    );
    let cases = [
        (
            "wrongpw",
            format!(
                "mysql://{}:not-the-password@{}:{}/{}",
                o.user().unwrap_or("root"),
                o.ip_or_hostname(),
                o.tcp_port(),
                env.db.name
            ),
            "the FreePBX database server refused the login",
            format!("{target} (wrong user or password?)"),
        ),
        (
            "down",
            format!("mysql://root@127.0.0.1:{closed_port}/{}", env.db.name),
            "cannot reach the FreePBX database server",
            format!("root@127.0.0.1:{closed_port}/{}", env.db.name),
        ),
    ];
    for (name, db, human, detail) in cases.iter() {
        let agent = Agent::spawn(&config(&env, name, db, &url, ""), &[]);
        let root = agent.endpoint(0).await;
        // Several polls and passes have run: every status shows the human message.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = 0;
        while Instant::now() < deadline {
            let st = status(&root).await;
            if let Some(e) = st["freepbx"]["last_error"].as_str() {
                seen += 1;
                assert!(
                    e.contains(human) && e.contains(detail),
                    "{name}: status freepbx.last_error is {e:?}"
                );
                assert!(!e.contains("not-the-password"), "{e}");
            }
            if let Some(e) = st["last_error"].as_str() {
                assert!(e.contains(human), "{name}: status last_error is {e:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            seen > 10,
            "{name}: no error in the status: {}",
            agent.dump()
        );
    }
}

/// An HTTP peer that accepts connections and reads requests but never answers (a hung
/// iSymphony).
async fn hung_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// Send SIGTERM and wait up to 10 s for the agent to exit with success; when it was sent.
fn sigterm_and_clean_exit(agent: &mut Agent) -> Instant {
    let t0 = Instant::now();
    agent.signal(libc::SIGTERM);
    let st = agent
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", agent.dump()));
    assert!(st.success(), "{st:?}");
    t0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_cut_short_by_sigterm_logs_its_summary() {
    let env = Env::new(1).await;
    let hung = hung_server().await;
    let url = format!("http://{hung}/communication_manager/api/resource/");
    let mut agent = Agent::spawn(&config(&env, "t", &db_url(&env), &url, ""), &[]);
    agent.wait_log(T, |v| msg(v) == "pass started").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = sigterm_and_clean_exit(&mut agent);
    let lines: Vec<String> = agent
        .messages()
        .into_iter()
        .filter(|m| m.starts_with("pass:"))
        .collect();
    eprintln!(
        "SIGTERM during a hung pass: exit after {:?}; {lines:?}",
        t0.elapsed()
    );
    assert!(
        lines
            .iter()
            .any(|m| m.starts_with("pass: stopped: the agent is shutting down (SIGTERM)")),
        "{}",
        agent.dump()
    );
}

/// SIGTERM during the writes of a long first sync (every write delayed 300 ms at the proxy):
/// the pass is asked to stop after the grace, returns what it applied, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_stopped_by_sigterm_during_its_writes_logs_what_it_applied() {
    let env = Env::new(20).await;
    let proxy = http_proxy::RecordingProxy::start(env.server().http_addr()).await;
    proxy.set_write_delay(Duration::from_millis(300));
    // 110 writes of 300 ms each, 4 at a time: about 8 s, well past the 4 s grace SIGTERM
    // gives a running pass, whatever the default concurrency.
    let mut agent = Agent::spawn(
        &config(&env, "w", &db_url(&env), &proxy.url, "concurrency = 4\n"),
        &[],
    );
    assert!(
        eventually(T, || async { !proxy.writes().is_empty() }).await,
        "{}",
        agent.dump()
    );
    let t0 = sigterm_and_clean_exit(&mut agent);
    // Copied out first: `dump` locks the lines again.
    let lines = agent.lines.lock().unwrap().clone();
    let line = lines
        .iter()
        .find(|v| msg(v).starts_with("pass: stopped: the agent is shutting down (SIGTERM)"))
        .cloned()
        .unwrap_or_else(|| panic!("{}", agent.dump()));
    let applied = line["applied"].as_u64().unwrap();
    let sent = proxy.writes().len() as u64;
    eprintln!(
        "SIGTERM during writes: exit after {:?}; {}; {sent} writes reached the proxy",
        t0.elapsed(),
        msg(&line)
    );
    assert!(applied > 0, "{line}");
    assert!(
        msg(&line).contains(&format!("applied {applied} of ")),
        "{line}"
    );
    assert_eq!(
        applied, sent,
        "every write sent was applied and counted: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_after_a_reload_says_reload_in_its_triggers() {
    let env = Env::new(1).await;
    let url = env.server().base_url();
    let path = config(&env, "r", &db_url(&env), &url, "");
    let agent = Agent::spawn(&path, &[]);
    agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("debounce = \"100ms\"", "debounce = \"150ms\"");
    std::fs::write(&path, text).unwrap();
    agent.signal(libc::SIGHUP);
    agent
        .wait_log(T, |v| msg(v) == "configuration reloaded")
        .await;
    let line = agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:") && v["triggers"].as_str().unwrap_or("").contains("reload")
        })
        .await;
    assert!(
        !line["triggers"].as_str().unwrap().contains("startup"),
        "{line}"
    );
}
