//! The agent as a service, with the real binary: triggers, agent resources, systemd
//! notify, hot reload; outages, signals and failover in `daemon_outages.rs`. Small data, fast
//! polling, short timeouts.

use crate::support;
use support::agent;
use support::e2e;

use agent::*;
use e2e::*;
use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Not the factory password: the service refuses that outside the demo. The
/// test's iSymphony ([`env`]) uses it too.
const PW: &str = "Agent-Daemon-Pw-1";

/// [`Env::new`] with the server's password set to [`PW`].
async fn env(n: usize) -> Env {
    Env::new_with(n, |c| c.server.password = Secret::new(PW)).await
}

/// How the agent under test is configured.
#[derive(Default)]
struct Opts {
    /// Run the embedded endpoint (status resources; the sync target unless `url`).
    server: bool,
    password: Option<String>,
    /// `[freepbx] database_url` (else `config_file` is used).
    db_url: Option<String>,
    /// `[isymphony] url`.
    url: Option<String>,
    /// `[sync] resync_interval`.
    resync: Option<&'static str>,
    name: &'static str,
}

fn toml_for(env: &Env, o: &Opts) -> String {
    let dir = env.dir.path().join(o.name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut s = format!(
        "[server]\nenabled = {}\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\npassword = \"{}\"\n",
        o.server,
        dir.join("server").display(),
        o.password.as_deref().unwrap_or(PW)
    );
    // Without the embedded endpoint the agent resources get a listener of their own: a free port,
    // not the production 58081 (agents run side by side here).
    if !o.server {
        s.push_str("agent_listen = \"127.0.0.1:0\"\n");
    }
    s.push('\n');
    s.push_str("[freepbx]\n");
    if let Some(u) = &o.db_url {
        s.push_str(&format!("database_url = \"{u}\"\n"));
    }
    s.push_str(&format!(
        "config_file = \"{}\"\namportal_conf = \"{}\"\nvoicemail_conf = \"{}\"\npoll_interval = \"200ms\"\n\n",
        env.dir.path().join("freepbx.conf").display(),
        env.dir.path().join("amportal.conf").display(),
        env.vm_path().display()
    ));
    if let Some(u) = &o.url {
        s.push_str(&format!(
            "[isymphony]\nurl = \"{u}\"\nusername = \"manager\"\npassword = \"{PW}\"\ntimeout = \"2s\"\n\n"
        ));
    }
    s.push_str(&format!(
        "[sync]\ndebounce = \"100ms\"\nretry_backoff_max = \"1s\"\nstate_dir = \"{}\"\n",
        dir.join("state").display()
    ));
    if let Some(r) = o.resync {
        s.push_str(&format!("resync_interval = \"{r}\"\n"));
    }
    s
}

fn write_config(env: &Env, o: &Opts) -> PathBuf {
    let p = env.dir.path().join(format!("{}.toml", o.name));
    std::fs::write(&p, toml_for(env, o)).unwrap();
    p
}

fn db_url(env: &Env) -> String {
    format!("{}/{}", support::server_url(), env.db.name)
}

fn freepbx_conf(env: &Env, addr: std::net::SocketAddr) {
    let o = support::server_opts();
    std::fs::write(
        env.dir.path().join("freepbx.conf"),
        format!(
            "<?php\n$amp_conf['AMPDBUSER'] = '{}';\n$amp_conf['AMPDBPASS'] = '{}';\n\
             $amp_conf['AMPDBHOST'] = '{}';\n$amp_conf['AMPDBPORT'] = '{}';\n\
             $amp_conf['AMPDBNAME'] = '{}';\n$amp_conf['AMPDBENGINE'] = 'mysql';\n",
            o.user().unwrap_or("root"),
            o.pass().unwrap_or(""),
            addr.ip(),
            addr.port(),
            env.db.name
        ),
    )
    .unwrap();
}

fn client(api_url: &str, pw: &str) -> Client {
    Client::new(&ClientConfig::new(
        api_url.to_string(),
        "manager".to_string(),
        Secret::new(pw),
    ))
    .unwrap()
}

/// Extension number → display name on the server at `api_url` (None: not readable).
async fn ext_names(api_url: &str) -> Option<BTreeMap<String, String>> {
    let api = client(api_url, PW);
    let cs: CoreServer = api.get(paths::core_server_by_slug("default")).await.ok()?;
    let id = cs.id?;
    let exts: Vec<Extension> = api.get(paths::extensions(&id)).await.ok()?;
    Some(
        exts.into_iter()
            .map(|x| (x.extension, x.display_name))
            .collect(),
    )
}

async fn ext_name(api_url: &str, ext: &str) -> Option<String> {
    ext_names(api_url).await?.get(ext).cloned()
}

async fn emails_of(api_url: &str, username: &str) -> Option<Vec<String>> {
    let api = client(api_url, PW);
    let cs: CoreServer = api.get(paths::core_server_by_slug("default")).await.ok()?;
    let cs = cs.id?;
    let users: Vec<User> = api.get(paths::users(&cs)).await.ok()?;
    let uid = users.into_iter().find(|u| u.username == username)?.id?;
    let v: Vec<EmailAddress> = api.get(paths::email_addresses(&cs, &uid)).await.ok()?;
    Some(v.into_iter().map(|e| e.address).collect())
}

async fn get_json(root: &str, path: &str, pw: &str) -> (u16, Value) {
    let (st, text) = get_text(root, path, pw).await;
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn status(root: &str) -> Value {
    get_json(root, "/isymphony-sync/api/status", PW).await.1
}

fn api_url(root: &str) -> String {
    format!("{root}/communication_manager/api/resource/")
}

const T: Duration = Duration::from_secs(15);

/// Collects datagrams sent to a NOTIFY_SOCKET.
fn notify_socket(dir: &Path) -> (PathBuf, Arc<Mutex<Vec<String>>>) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let msgs = Arc::new(Mutex::new(Vec::new()));
    let m2 = msgs.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            m2.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (path, msgs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_file_changes_reach_the_embedded_server_with_no_other_action() {
    let mut env = env(3).await;
    let (sock, notes) = notify_socket(env.dir.path());
    let cfg = write_config(
        &env,
        &Opts {
            server: true,
            db_url: Some(db_url(&env)),
            name: "a",
            ..Opts::default()
        },
    );
    let mut agent = Agent::spawn(
        &cfg,
        &[
            ("NOTIFY_SOCKET", sock.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let root = agent.endpoint(0).await;
    let api = api_url(&root);
    assert!(
        eventually(T, || async {
            ext_names(&api).await.is_some_and(|m| m.len() == 3)
        })
        .await,
        "{}",
        agent.dump()
    );

    // (a) A row changed by plain SQL, nothing else.
    env.db
        .exec("UPDATE users SET name = 'Zed Zulu' WHERE extension = '1002'")
        .await;
    assert!(
        eventually(T, || async {
            ext_name(&api, "1002").await.as_deref() == Some("Zed Zulu")
        })
        .await,
        "{}",
        agent.dump()
    );
    // A new extension inserted by SQL.
    env.db.exec(&extension_rows(4, 1)).await;
    assert!(
        eventually(T, || async {
            ext_names(&api).await.is_some_and(|m| m.len() == 4)
        })
        .await,
        "{}",
        agent.dump()
    );

    // (b) voicemail.conf rewritten: the e-mail reaches the server.
    env.emails.insert(1003, "new1003@example.com".into());
    env.write_voicemail();
    assert!(
        eventually(T, || async {
            emails_of(&api, "1003").await == Some(vec!["new1003@example.com".to_string()])
        })
        .await,
        "{}",
        agent.dump()
    );

    // Status.
    let st = status(&root).await;
    assert_eq!(st["role"], "leader", "{st}");
    assert_eq!(st["freepbx"]["reachable"], true);
    assert_eq!(st["isymphony"]["reachable"], true);
    assert!(st["next_verify"].is_string());
    assert!(st["last_success"].is_string());
    assert_eq!(st["counts_by_kind"]["extension"], 4);
    assert!(st["lock"]
        .as_str()
        .unwrap()
        .starts_with("isymphony-sync:default@"));

    // Same auth as the Configuration API.
    let r = http()
        .get(format!("{root}/isymphony-sync/api/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        get_json(&root, "/isymphony-sync/api/status", "wrong")
            .await
            .0,
        403
    );

    // (d) The trigger resource.
    let post = |body: &'static str| {
        let root = root.clone();
        async move {
            http()
                .post(format!("{root}/isymphony-sync/api/sync"))
                .basic_auth("manager", Some(PW))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post("{\"full\": 1}").await, 422);
    assert_eq!(post("{\"full\": true}").await, 204);
    agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:") && v["triggers"].as_str().unwrap_or("").contains("api")
        })
        .await;

    // The plan: in sync now.
    let (code, plan) = get_json(&root, "/isymphony-sync/api/plan", PW).await;
    assert_eq!(code, 200, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["exit_code"], 0, "{plan}");

    // Metrics.
    let r = get_logged_in(&root, "/isymphony-sync/api/metrics", PW).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let m = r.text().await.unwrap();
    for want in [
        "isymphony_sync_http_requests_total{method=\"POST\",status=\"422\"} 1",
        "isymphony_sync_http_requests_total{method=\"GET\",status=\"401\"} 1",
        "isymphony_sync_managed_objects{kind=\"extension\"} 4",
        "isymphony_sync_leader 1",
    ] {
        assert!(m.contains(want), "missing {want} in\n{m}");
    }
    let count = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count("isymphony_sync_passes_total{result=\"success\"}") >= 4.0,
        "{m}"
    );
    assert!(
        count("isymphony_sync_change_to_converged_seconds_count") >= 2.0,
        "{m}"
    );
    assert!(
        count("isymphony_sync_last_success_timestamp_seconds") > 1.7e9,
        "{m}"
    );

    // One log line per pass, with result and counts.
    let passes: Vec<Value> = agent
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|v| msg(v).starts_with("pass:"))
        .cloned()
        .collect();
    assert!(passes
        .iter()
        .all(|p| p["result"].is_string() && p["counts"].is_string()));

    // systemd notify.
    agent.signal(libc::SIGTERM);
    let st = agent
        .wait_exit(Duration::from_secs(10))
        .expect("no exit within 10 s");
    assert!(st.success(), "{st:?}");
    // The datagrams were sent before the exit; wait until the reader has them all.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !notes
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.starts_with("STOPPING=1"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let notes = notes.lock().unwrap().clone();
    assert!(notes.iter().any(|n| n.starts_with("READY=1")), "{notes:?}");
    assert!(
        notes.iter().any(|n| n.starts_with("STATUS=success: ")),
        "{notes:?}"
    );
    assert!(
        notes.iter().filter(|n| *n == "WATCHDOG=1").count() >= 2,
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("STOPPING=1")),
        "{notes:?}"
    );
    let ready = notes.iter().position(|n| n.starts_with("READY=1")).unwrap();
    let first_status = notes
        .iter()
        .position(|n| n.starts_with("STATUS=success"))
        .unwrap();
    assert!(ready < first_status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_applies_a_valid_config_and_keeps_the_old_one_on_an_invalid_one() {
    let env = env(2).await;
    let mut o = Opts {
        server: true,
        db_url: Some(db_url(&env)),
        password: Some("pw-one".into()),
        name: "r",
        ..Opts::default()
    };
    let cfg = write_config(&env, &o);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    assert_eq!(
        get_json(&root, "/isymphony-sync/api/status", "pw-one")
            .await
            .0,
        200
    );

    // Invalid, written the way editors do it (new file renamed over the old one).
    let tmp = env.dir.path().join(".r.toml.swp");
    std::fs::write(
        &tmp,
        toml_for(&env, &o).replace("[sync]\n", "[sync]\ndebounse = 1\n"),
    )
    .unwrap();
    std::fs::rename(&tmp, &cfg).unwrap();
    let e = agent
        .wait_log(T, |v| msg(v).contains("reload") && v["level"] == "ERROR")
        .await;
    assert!(e["error"].as_str().unwrap().contains("debounse"), "{e}");
    let (code, st) = get_json(&root, "/isymphony-sync/api/status", "pw-one").await;
    assert_eq!(code, 200, "the old configuration stays in force");
    assert!(st["last_reload_error"]
        .as_str()
        .unwrap()
        .contains("debounse"));

    // Valid: a new password (and, with port 0, a new listen address) without a restart.
    o.password = Some("pw-two".into());
    std::fs::write(&cfg, toml_for(&env, &o)).unwrap();
    let root2 = agent.endpoint(1).await;
    agent
        .wait_log(T, |v| msg(v) == "configuration reloaded")
        .await;
    assert_eq!(
        get_json(&root2, "/isymphony-sync/api/status", "pw-one")
            .await
            .0,
        403
    );
    let (code, st) = get_json(&root2, "/isymphony-sync/api/status", "pw-two").await;
    assert_eq!(code, 200);
    assert!(st["last_reload_error"].is_null(), "{st}");
    // The sync keeps working against the restarted endpoint (its store is durable).
    env.db
        .exec("UPDATE users SET name = 'After Reload' WHERE extension = '1001'")
        .await;
    let api2 = api_url(&root2);
    let client2 = client(&api2, "pw-two");
    assert!(
        eventually(T, || async {
            let Ok(cs) = client2
                .get::<CoreServer>(paths::core_server_by_slug("default"))
                .await
            else {
                return false;
            };
            let Ok(exts) = client2
                .get::<Vec<Extension>>(paths::extensions(&cs.id.unwrap()))
                .await
            else {
                return false;
            };
            exts.iter()
                .any(|x| x.extension == "1001" && x.display_name == "After Reload")
        })
        .await,
        "{}",
        agent.dump()
    );

    // SIGHUP re-reads the file even when it did not change.
    agent.signal(libc::SIGHUP);
    agent
        .wait_log(T, |v| {
            msg(v) == "configuration reloaded" && v["trigger"] == "SIGHUP"
        })
        .await;
    assert!(pid_alive(agent.pid()));
}

fn pid_alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn journald_text_has_no_timestamps_and_json_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[server]\nenabeld = true\n").unwrap();
    let run = |args: &[&str], journal: bool| {
        let mut c = support::process::bin();
        c.arg("--config").arg(&cfg).args(args);
        if journal {
            c.env("JOURNAL_STREAM", "8:12345");
        } else {
            c.env_remove("JOURNAL_STREAM");
        }
        let out = c.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "an invalid config fails at start"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = run(&[], true);
    assert!(text.contains("enabeld"), "{text}");
    assert!(!text.starts_with("20"), "{text}");
    // A valid config with an unreachable database: the agent logs and keeps running.
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[server]\nenabled = false\nagent_listen = \"127.0.0.1:0\"\npassword = \"Agent-Pw-8\"\n[freepbx]\ndatabase_url = \"mysql://root@127.0.0.1:1/x\"\nvoicemail_conf = \"{0}/vm.conf\"\nconfig_file = \"{0}/freepbx.conf\"\n[sync]\nstate_dir = \"{0}/state\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    for (json, journal) in [(false, true), (true, false)] {
        let mut c = support::process::bin();
        c.arg("--config").arg(&good);
        if json {
            c.args(["--log-format", "json"]);
        }
        if journal {
            c.env("JOURNAL_STREAM", "8:12345");
        } else {
            c.env_remove("JOURNAL_STREAM");
        }
        let mut child = support::process::spawn(
            c.env("RUST_LOG", "info")
                .stderr(std::process::Stdio::piped()),
        );
        // SIGTERM once the service is up (its signal handlers are in place when it logs that
        // it started), not after a fixed sleep.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("isymphony-sync agent started") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the service logged that it started");
        child.signal(libc::SIGTERM);
        let status = child
            .wait_timeout(Duration::from_secs(30))
            .expect("the service stops on SIGTERM");
        assert_eq!(status.code(), Some(0), "a clean stop on SIGTERM");
        let err = reader.join().unwrap();
        let first = err.lines().next().unwrap_or_default().to_string();
        if json {
            let v: Value = serde_json::from_str(&first).unwrap();
            assert!(v["timestamp"].is_string(), "{first}");
            assert!(v["level"].is_string());
        } else {
            let level = first.trim_start();
            assert!(
                ["INFO", "WARN", "ERROR"]
                    .iter()
                    .any(|l| level.starts_with(l)),
                "no timestamp, the level first: {first}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_full_verify_repairs_drift_made_on_the_isymphony_side() {
    let env = env(2).await;
    let direct = env.server().base_url();
    let cfg = write_config(
        &env,
        &Opts {
            server: false,
            db_url: Some(db_url(&env)),
            url: Some(direct.clone()),
            resync: Some("2s"),
            name: "v",
            ..Opts::default()
        },
    );
    let agent = Agent::spawn(&cfg, &[]);
    let want = Some(vec!["u1001@example.com".to_string()]);
    assert!(
        eventually(T, || async { emails_of(&direct, "1001").await == want }).await,
        "{}",
        agent.dump()
    );
    // Drift: someone deletes the e-mail address on the iSymphony side. No FreePBX change,
    // so only the periodic full verify can notice it.
    let cs = env.cs().await;
    let uid = env.user_id("1001").await;
    let mails: Vec<EmailAddress> = env
        .api
        .get(paths::email_addresses(&cs, &uid))
        .await
        .unwrap();
    for m in mails {
        env.api
            .delete(&paths::email_address(&cs, &uid, &m.id.unwrap()))
            .await
            .unwrap();
    }
    assert_eq!(emails_of(&direct, "1001").await, Some(vec![]));
    assert!(
        eventually(T, || async { emails_of(&direct, "1001").await == want }).await,
        "{}",
        agent.dump()
    );
    // The repairing pass is a timer-triggered full one (its log line ends the pass).
    agent
        .wait_log(T, |v| {
            msg(v).starts_with("pass:")
                && v["triggers"].as_str().unwrap_or("").contains("timer")
                && v["full"] == true
        })
        .await;
}

#[path = "daemon_outages.rs"]
mod outages;
