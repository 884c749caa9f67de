//! Binary-log change detection (issue 20 point 3), against a real second MariaDB that each test
//! starts with `--log-bin` on its own port and data directory (`support::binlog_db`), and the
//! real agent binary with its embedded endpoint:
//! - a change by plain SQL reaches the endpoint through the binary log (ROW and STATEMENT
//!   formats), and `--check-config` says the log is followed;
//! - a login without REPLICATION SLAVE falls back to polling with a warning (log, metric,
//!   `--check-config`), and changes still arrive;
//! - the dump thread killed in the middle of a burst of changes: one warning, one counted
//!   break, the poll takes over (its rate goes up), nothing is missed, and the stream resumes.

use crate::support;

use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;
use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::agent::{get_text, msg, ts, Agent};
use support::binlog_db::BinlogServer;

const PW: &str = "Agent-Binlog-Pw-1";
const T: Duration = Duration::from_secs(30);
const FOLLOWING: &str = "following the binary log";
const BINLOG_CHANGE: &str = "FreePBX database changed (binary log)";

/// An agent config: embedded endpoint, the binlog server's database `db_url`, `poll`.
fn config(dir: &Path, name: &str, db_url: &str, poll: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let vm = d.join("voicemail.conf");
    std::fs::write(&vm, "[general]\n\n[default]\n").unwrap();
    let text = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{0}/server\"\npassword = \"{PW}\"\n\n\
         [freepbx]\ndatabase_url = \"{db_url}\"\nconfig_file = \"{0}/freepbx.conf\"\n\
         amportal_conf = \"{0}/amportal.conf\"\nvoicemail_conf = \"{1}\"\npoll_interval = \"{poll}\"\n\n\
         [sync]\ndebounce = \"20ms\"\nretry_backoff_max = \"1s\"\nstate_dir = \"{0}/state\"\n",
        d.display(),
        vm.display()
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Extension number → display name on the agent's embedded endpoint.
async fn ext_names(root: &str) -> Option<BTreeMap<String, String>> {
    let api = Client::new(&ClientConfig::new(
        format!("{root}/communication_manager/api/resource/"),
        "manager".to_string(),
        Secret::new(PW),
    ))
    .ok()?;
    let cs: CoreServer = api.get(paths::core_server_by_slug("default")).await.ok()?;
    let exts: Vec<Extension> = api.get(paths::extensions(&cs.id?)).await.ok()?;
    Some(
        exts.into_iter()
            .map(|x| (x.extension, x.display_name))
            .collect(),
    )
}

/// Wait until the endpoint shows `want` for every extension in it; false on timeout.
async fn converges(root: &str, want: &BTreeMap<String, String>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(names) = ext_names(root).await {
            if want.iter().all(|(k, v)| names.get(k) == Some(v)) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One sample of the agent's metrics (`name{labels}` as printed), if exported.
async fn metric(root: &str, sample: &str) -> Option<f64> {
    let (_, text) = get_text(root, "/isymphony-sync/api/metrics", PW).await;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

fn count(agent: &Agent, prefix: &str) -> usize {
    agent.count(|v| msg(v).starts_with(prefix))
}

/// `--check-config`'s `changes` line.
fn check_line(cfg: &Path) -> String {
    let out = support::process::bin()
        .arg("--config")
        .arg(cfg)
        .arg("--check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some("changes"))
        .unwrap_or_else(|| panic!("no changes line in:\n{text}"))
        .to_string()
}

/// Rename extension `ext` by plain SQL and wait for the endpoint to show it.
async fn rename(db: &mut mysql_async::Conn, root: &str, ext: &str, name: &str) -> bool {
    db.query_drop(format!(
        "UPDATE users SET name = '{name}' WHERE extension = '{ext}'"
    ))
    .await
    .unwrap();
    let want = BTreeMap::from([(ext.to_string(), name.to_string())]);
    converges(root, &want, T).await
}

/// The binary log delivers changes in `format`; the poll runs every 3 s, the safety poll every
/// 5 s, so a new "changed (binary log)" line is the follower's own doing.
async fn binlog_delivers(format: &str) {
    let srv = BinlogServer::start(format).await;
    srv.freepbx_db("asterisk", 5).await;
    let cfg = config(srv.dir.path(), "a", &srv.url(Some("asterisk")), "3s");
    assert!(
        check_line(&cfg).starts_with("ok")
            && check_line(&cfg).contains(&format!("binary log followed (binlog_format {format})")),
        "{}",
        check_line(&cfg)
    );
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    agent.wait_log(T, |v| msg(v).starts_with(FOLLOWING)).await;
    let first = BTreeMap::from([("1005".to_string(), support::e2e::name_of(4))]);
    assert!(converges(&root, &first, T).await, "{}", agent.dump());
    assert_eq!(
        metric(&root, "isymphony_sync_change_source{source=\"binlog\"}").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&root, "isymphony_sync_change_source{source=\"poll\"}").await,
        Some(0.0)
    );
    let mut db = srv.conn(Some("asterisk")).await;
    for i in 0..3 {
        let before = count(&agent, BINLOG_CHANGE);
        let name = format!("Binlog {format} {i}");
        assert!(
            rename(&mut db, &root, "1002", &name).await,
            "{}",
            agent.dump()
        );
        assert!(count(&agent, BINLOG_CHANGE) > before, "{}", agent.dump());
    }
    // A write the sync does not read is no trigger.
    let before = count(&agent, BINLOG_CHANGE);
    db.query_drop("CREATE TABLE cdr_test (id INT PRIMARY KEY) ENGINE=InnoDB")
        .await
        .unwrap();
    db.query_drop("INSERT INTO cdr_test VALUES (1), (2)")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&agent, BINLOG_CHANGE), before, "{}", agent.dump());
    assert_eq!(count(&agent, "binary log stream broke"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_plain_sql_reaches_the_endpoint_through_the_row_binary_log() {
    binlog_delivers("ROW").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_binary_log_works_and_a_login_without_the_grant_polls_with_a_warning() {
    binlog_delivers("STATEMENT").await;
    let srv = BinlogServer::start("ROW").await;
    srv.freepbx_db("asterisk", 3).await;
    let mut root_conn = srv.conn(None).await;
    // SELECT and the log's position, but not REPLICATION SLAVE.
    for sql in [
        "CREATE USER 'agent'@'127.0.0.1' IDENTIFIED BY 'agent-pw'",
        "GRANT SELECT ON asterisk.* TO 'agent'@'127.0.0.1'",
        "GRANT BINLOG MONITOR ON *.* TO 'agent'@'127.0.0.1'",
    ] {
        root_conn.query_drop(sql).await.unwrap();
    }
    let url = format!("mysql://agent:agent-pw@127.0.0.1:{}/asterisk", srv.port);
    let cfg = config(srv.dir.path(), "b", &url, "150ms");
    let line = check_line(&cfg);
    assert!(
        line.starts_with("warn")
            && line.contains("REPLICATION SLAVE")
            && !line.contains("agent-pw"),
        "{line}"
    );
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    let w = agent
        .wait_log(T, |v| msg(v).starts_with("binary log not followed"))
        .await;
    assert_eq!(w["level"], "WARN", "{w}");
    assert!(w.to_string().contains("REPLICATION SLAVE"), "{w}");
    let mut db = srv.conn(Some("asterisk")).await;
    assert!(
        rename(&mut db, &root, "1001", "Polled Change").await,
        "{}",
        agent.dump()
    );
    assert_eq!(
        metric(&root, "isymphony_sync_change_source{source=\"poll\"}").await,
        Some(1.0)
    );
    assert_eq!(count(&agent, "binary log not followed"), 1, "one warning");
    assert_eq!(count(&agent, BINLOG_CHANGE), 0);
}

/// Rename extension 1001+(i % n) to `Burst i`, `changes` times; the dump thread is killed
/// after `kill_at` of them. The expected final names.
async fn burst(
    srv: &BinlogServer,
    n: usize,
    changes: usize,
    kill_at: usize,
) -> BTreeMap<String, String> {
    let mut db = srv.conn(Some("asterisk")).await;
    let mut want = BTreeMap::new();
    for i in 0..changes {
        if i == kill_at {
            let id = srv.dump_thread().await.expect("a Binlog Dump thread");
            let mut k = srv.conn(None).await;
            k.query_drop(format!("KILL {id}")).await.unwrap();
        }
        let ext = (1001 + i % n).to_string();
        let name = format!("Burst {i}");
        db.query_drop(format!(
            "UPDATE users SET name = '{name}' WHERE extension = '{ext}'"
        ))
        .await
        .unwrap();
        want.insert(ext, name);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_during_a_burst_misses_nothing_the_poll_takes_over_and_binlog_resumes() {
    let srv = BinlogServer::start("ROW").await;
    let n = 20;
    srv.freepbx_db("asterisk", n).await;
    let cfg = config(srv.dir.path(), "c", &srv.url(Some("asterisk")), "150ms");
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    agent.wait_log(T, |v| msg(v).starts_with(FOLLOWING)).await;
    let first = BTreeMap::from([(format!("{}", 1000 + n), support::e2e::name_of(n - 1))]);
    assert!(converges(&root, &first, T).await, "{}", agent.dump());

    let want = burst(&srv, n, 80, 40).await;
    let w = agent
        .wait_log(T, |v| msg(v).starts_with("binary log stream broke"))
        .await;
    assert_eq!(w["level"], "WARN", "{w}");
    assert!(
        converges(&root, &want, T).await,
        "missed a change:\n{}",
        agent.dump()
    );

    // The stream comes back (the retry starts after 1 s) ...
    let resumed = agent
        .wait_nth(1, T, |v| msg(v).starts_with(FOLLOWING))
        .await;
    // ... and in between the poll ran every 150 ms (with a stream: every 5 s) and found the
    // rest of the burst.
    let at = |v: &serde_json::Value| v["timestamp"].as_str().map(ts);
    let (from, to) = (at(&w).unwrap(), at(&resumed).unwrap());
    let polled = agent.count(|v| {
        msg(v) == "FreePBX database changed" && at(v).is_some_and(|t| t > from && t < to)
    });
    assert!(
        polled >= 2,
        "poll detections between break and resume: {polled}\n{}",
        agent.dump()
    );
    assert_eq!(count(&agent, "binary log stream broke"), 1, "one warning");
    assert_eq!(
        metric(&root, "isymphony_sync_binlog_stream_breaks_total").await,
        Some(1.0)
    );
    assert_eq!(
        metric(&root, "isymphony_sync_change_source{source=\"binlog\"}").await,
        Some(1.0)
    );
    // Changes after the resume come through the log again.
    let before = count(&agent, BINLOG_CHANGE);
    let mut db = srv.conn(Some("asterisk")).await;
    assert!(
        rename(&mut db, &root, "1003", "After Resume").await,
        "{}",
        agent.dump()
    );
    assert!(count(&agent, BINLOG_CHANGE) > before, "{}", agent.dump());
}
