//! Binary-log change detection against the poll (issue 20 point 3), with the release binary
//! and a private MariaDB started with `--log-bin --binlog-format=ROW` (`support::binlog_db`),
//! so that the whole `mariadbd` process's CPU is the agent's doing (plus the server's own
//! background work, measured alone at the end).
//!
//! The same database (1,000 extensions by default) is synced twice, each time by a fresh agent
//! with default timing and its embedded endpoint:
//! - `binlog`: as root, which may follow the binary log;
//! - `poll`: as a login with SELECT only (no REPLICATION SLAVE), which falls back to polling.
//!
//! For each: change latency (a committed `UPDATE users` → the new name in a GET of that
//! extension on the endpoint, polled every 2 ms) over N changes, then the idle CPU of the agent
//! and of `mariadbd` over a window (`/proc/<pid>/stat`). Every figure line starts `BINLOG` and
//! carries the load average, because the machine may be shared.
//!
//! Run: `cargo bench --bench binlog_bench` (env: BENCH_SMALL extensions, default 1000;
//! BENCH_CHANGES, default 100; BENCH_IDLE_SECS, default 60; BENCH_MODES, default `binlog,poll`;
//! BENCH_DEBOUNCE, e.g. `10ms`, default the configuration's default).

#[path = "support/agents.rs"]
mod agents;
#[path = "../tests/support/mod.rs"]
mod support;

use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;
use mysql_async::prelude::Queryable;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::agent::{msg, Agent};
use support::binlog_db::BinlogServer;

const PW: &str = "Binlog-Bench-Pw-1";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn hz() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// CPU of `pid` over `secs`, in % of one core.
async fn cpu_over(pids: &[i32], secs: u64) -> Vec<f64> {
    let t0: Vec<Option<u64>> = pids.iter().map(|p| cpu_ticks(*p)).collect();
    let w = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let wall = w.elapsed().as_secs_f64();
    pids.iter()
        .zip(t0)
        .map(|(p, a)| match (a, cpu_ticks(*p)) {
            (Some(a), Some(b)) => (b - a) as f64 / hz() / wall * 100.0,
            _ => f64::NAN,
        })
        .collect()
}

fn config(dir: &Path, name: &str, db_url: &str, vm: &Path) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let text = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{0}/server\"\npassword = \"{PW}\"\n\n\
         [freepbx]\ndatabase_url = \"{db_url}\"\nconfig_file = \"{0}/freepbx.conf\"\n\
         amportal_conf = \"{0}/amportal.conf\"\nvoicemail_conf = \"{1}\"\n\n\
         [sync]\nstate_dir = \"{0}/state\"\n{2}",
        d.display(),
        vm.display(),
        debounce()
            .map(|d| format!("debounce = \"{d}\"\n"))
            .unwrap_or_default()
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// `BENCH_DEBOUNCE` (e.g. `10ms`): `[sync] debounce` for the run, else the default.
fn debounce() -> Option<String> {
    std::env::var("BENCH_DEBOUNCE")
        .ok()
        .filter(|d| !d.is_empty())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The first sync, then `changes` renames measured to visibility, then the idle window.
async fn run(srv: &BinlogServer, mode: &str, url: &str, n: usize, changes: usize, idle: u64) {
    let vm = srv.dir.path().join("voicemail.conf");
    std::fs::write(&vm, support::e2e::voicemail_text(n)).unwrap();
    let cfg = config(srv.dir.path(), mode, url, &vm);
    let agent = Agent::spawn(&cfg, &[("RUST_LOG", "warn,isymphony_sync::agent=info")]);
    let root = agent.endpoint(0).await;
    agent
        .wait_log(Duration::from_secs(600), |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    let source = if agent.count(|v| msg(v).starts_with("following the binary log")) > 0 {
        "binary log"
    } else {
        "poll"
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api = Client::new(&ClientConfig::new(
        format!("{root}/communication_manager/api/resource/"),
        "manager".to_string(),
        Secret::new(PW),
    ))
    .unwrap();
    let cs = api
        .get::<CoreServer>(paths::core_server_by_slug("default"))
        .await
        .unwrap()
        .id
        .unwrap();
    let exts: Vec<Extension> = api.get(paths::extensions(&cs)).await.unwrap();
    assert_eq!(exts.len(), n, "first sync");
    let mut db = srv.conn(Some("asterisk")).await;
    let load0 = loadavg();
    let run = agents::Changes {
        exts: &exts,
        cs: &cs,
        count: changes,
        prefix: mode,
        check_every: Duration::from_millis(2),
        spread: Duration::from_millis(150),
    };
    let mut lat: Vec<f64> = agents::change_latencies(&mut db, &api, &run)
        .await
        .iter()
        .map(|l| l.as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "BINLOG latency {mode} (detected by the {source}, debounce {}): {} changes at {n} extensions: p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms  min {:.0} ms; load average {load0} -> {}",
        debounce().unwrap_or_else(|| "default".into()),
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        lat[lat.len() - 1],
        lat[0],
        loadavg()
    );
    // How much of that the pass itself took (its log line's `seconds`), for the passes the
    // changes started.
    let mut pass_ms: Vec<f64> = agent
        .select(|v| msg(v).starts_with("pass:") && v["triggers"] != "startup")
        .iter()
        .filter_map(|v| v["seconds"].as_f64())
        .map(|s| s * 1000.0)
        .collect();
    pass_ms.sort_by(|a, b| a.total_cmp(b));
    if !pass_ms.is_empty() {
        println!(
            "BINLOG passes {mode}: {} passes, p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms",
            pass_ms.len(),
            pct(&pass_ms, 0.5),
            pct(&pass_ms, 0.95),
            pass_ms[pass_ms.len() - 1]
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let load0 = loadavg();
    let cpu = cpu_over(&[agent.pid(), srv.pid()], idle).await;
    println!(
        "BINLOG idle {mode}: agent {:.3}% of one core, mariadbd {:.3}% of one core over {idle} s; load average {load0} -> {}",
        cpu[0],
        cpu[1],
        loadavg()
    );
    let _ = db.disconnect().await;
}

fn main() {
    let rt = agents::runtime();
    rt.block_on(async {
        let n = env_num("BENCH_SMALL", 1000);
        let changes = env_num("BENCH_CHANGES", 100);
        let idle = env_num("BENCH_IDLE_SECS", 60) as u64;
        let d = isymphony_sync::config::Config::default();
        println!(
            "== binary log vs poll at {n} extensions (poll {:?}, debounce {})",
            d.freepbx.poll_interval,
            debounce().unwrap_or_else(|| format!("{:?} (default)", d.sync.debounce))
        );
        let srv = BinlogServer::start("ROW").await;
        srv.freepbx_db("asterisk", n).await;
        let mut c = srv.conn(None).await;
        for sql in [
            "CREATE USER 'pollonly'@'127.0.0.1' IDENTIFIED BY 'pollonly-pw'",
            "GRANT SELECT ON asterisk.* TO 'pollonly'@'127.0.0.1'",
        ] {
            c.query_drop(sql).await.unwrap();
        }
        let _ = c.disconnect().await;
        let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "binlog,poll".into());
        for mode in modes.split(',').map(str::trim) {
            let url = match mode {
                "binlog" => srv.url(Some("asterisk")),
                "poll" => format!("mysql://pollonly:pollonly-pw@127.0.0.1:{}/asterisk", srv.port),
                other => {
                    println!("BENCH_MODES: unknown mode {other:?} (binlog, poll)");
                    continue;
                }
            };
            run(&srv, mode, &url, n, changes, idle).await;
        }
        let load0 = loadavg();
        let alone = cpu_over(&[srv.pid()], idle).await;
        println!(
            "BINLOG idle none: mariadbd alone (no agent) {:.3}% of one core over {idle} s; load average {load0} -> {}",
            alone[0],
            loadavg()
        );
    });
}
