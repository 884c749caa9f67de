//! Agent benchmark (issue 5, point 10), with the release binary and a real MariaDB:
//!
//! 1. change latency: a committed SQL change → the object visible on the embedded server,
//!    over N changes (default 100) at 1,000 extensions, default timing (`[freepbx]
//!    poll_interval`, `[sync] debounce`, printed); p50 / p95 / max.
//! 2. idle RSS and CPU at 10,000 extensions, after the first sync, over a 30 s window, twice:
//!    the agent syncing to a separate server (the bench process's; the agent's own endpoint is on
//!    and serves status and metrics, as on a FreePBX host that syncs to a real iSymphony), and the
//!    agent syncing to its own embedded server, which then also holds the 10,000 extensions.
//!    Each time also MariaDB's CPU for the agent's queries: the agent connects as a MariaDB user
//!    of its own, whose `information_schema.USER_STATISTICS` CPU_TIME counts exactly its
//!    queries (`userstat` is switched on for the run if it was off), and the whole `mariadbd`
//!    process's CPU over the window, then over as long a window after the agent stopped.
//! 3. cost of the change-detection queries at 10,000 extensions (probe, stamps, CHECKSUM TABLE).
//!
//! 4. the same idle run on a busy PBX: 20 call records a second written to a table of the same
//!    database that the sync does not read, with the agent's detection counters (metrics).
//!
//! Run: `cargo bench --bench agent` (env: BENCH_CHANGES, BENCH_SMALL, BENCH_LARGE,
//! BENCH_IDLE_SECS, BENCH_IDLE=separate,embedded,busy; BENCH_LARGE=0 skips parts 2-4).

#[path = "support/agents.rs"]
mod agents;
#[path = "../tests/support/mod.rs"]
mod support;
use support::{agent, e2e};

use agent::*;
use e2e::*;
use isymphony_sync::agent::trigger::changes::ChangeDetector;
use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;
use std::time::{Duration, Instant};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An agent config with default timing and its embedded endpoint on a free port. The target is
/// that endpoint, or (`separate`) the bench process's server, as on a FreePBX host that syncs to a
/// real iSymphony and keeps its endpoint for status and metrics.
fn config(env: &Env, name: &str, separate: bool, db_url: &str) -> std::path::PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = format!(
        "[server]\nenabled = true\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}/server\"\n\n",
        dir.display()
    );
    if separate {
        server += &format!("[isymphony]\nurl = \"{}\"\n\n", env.server().base_url());
    }
    let text = format!(
        "{server}\
         [freepbx]\ndatabase_url = \"{1}\"\nvoicemail_conf = \"{2}\"\n\
         config_file = \"{0}/freepbx.conf\"\namportal_conf = \"{0}/amportal.conf\"\n\n\
         [sync]\nstate_dir = \"{0}/state\"\n",
        dir.display(),
        db_url,
        env.vm_path().display()
    );
    let p = env.dir.path().join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn api(root: &str) -> Client {
    Client::new(&ClientConfig::new(
        format!("{root}/communication_manager/api/resource/"),
        "manager".to_string(),
        Secret::new(isymphony_sync::config::DEFAULT_API_PASSWORD),
    ))
    .unwrap()
}

async fn wait_synced(api: &Client, n: usize, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(cs) = api
            .get::<CoreServer>(paths::core_server_by_slug("default"))
            .await
        {
            let id = cs.id.unwrap_or_default();
            if let Ok(exts) = api.get::<Vec<Extension>>(paths::extensions(&id)).await {
                if exts.len() == n {
                    return Some(id);
                }
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn proc_status(pid: i32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?)
}

async fn latency(n_ext: usize, changes: usize) {
    let d = isymphony_sync::config::Config::default();
    println!(
        "== change latency: {changes} SQL changes at {n_ext} extensions (default timing: poll {:?}, debounce {:?})",
        d.freepbx.poll_interval, d.sync.debounce
    );
    let env = Env::new(n_ext).await;
    let cfg = config(&env, "lat", false, &env.db.url());
    let agent = Agent::spawn(&cfg, &[("RUST_LOG", "warn,isymphony_sync::agent=info")]);
    let root = agent.endpoint(0).await;
    let api = api(&root);
    let t0 = Instant::now();
    let cs = wait_synced(&api, n_ext, Duration::from_secs(300))
        .await
        .expect("first sync");
    println!(
        "first sync of {n_ext} extensions: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let exts: Vec<Extension> = api.get(paths::extensions(&cs)).await.unwrap();
    let mut conn = env.db.conn().await;
    let run = agents::Changes {
        exts: &exts,
        cs: &cs,
        count: changes,
        prefix: "Bench",
        check_every: Duration::from_millis(10),
        spread: d.freepbx.poll_interval,
    };
    let mut lat: Vec<f64> = agents::change_latencies(&mut conn, &api, &run)
        .await
        .iter()
        .map(Duration::as_secs_f64)
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "latency over {} changes: p50 {:.3}s  p95 {:.3}s  max {:.3}s  min {:.3}s",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        lat[lat.len() - 1],
        lat[0]
    );
}

/// The cost of the change-detection queries on a database of `n_ext` extensions.
async fn detection_cost(n_ext: usize) {
    println!("== change-detection queries at {n_ext} extensions");
    let env = Env::new(n_ext).await;

    // Cost of the detection queries on this database.
    let opts =
        mysql_async::Opts::from_url(&format!("{}/{}", support::server_url(), env.db.name)).unwrap();
    let det = ChangeDetector::new(opts.clone());
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    use mysql_async::prelude::Queryable;
    let t = Instant::now();
    for _ in 0..200 {
        let _: Vec<(String, String)> = conn.query(ChangeDetector::probe_sql()).await.unwrap();
    }
    let probe = t.elapsed() / 200;
    let t = Instant::now();
    for _ in 0..10 {
        let _: Vec<(String, Option<u64>)> = conn.query(det.checksum_sql()).await.unwrap();
    }
    let sum = t.elapsed() / 10;
    let t = Instant::now();
    for _ in 0..200 {
        let _: Vec<mysql_async::Row> = conn.query(ChangeDetector::stamps_sql()).await.unwrap();
    }
    let stamps = t.elapsed() / 200;
    let rows: Vec<(String, u64)> = conn
        .query(format!(
            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_ROWS > 0",
            env.db.name
        ))
        .await
        .unwrap();
    let total: u64 = rows.iter().map(|r| r.1).sum();
    println!(
        "probe query (SHOW GLOBAL STATUS, every poll): {:.3} ms; stamps (information_schema.TABLES, after any write on the server): {:.3} ms; CHECKSUM TABLE of all watched tables (~{total} rows; only recently written ones are checksummed): {:.1} ms",
        probe.as_secs_f64() * 1e3,
        stamps.as_secs_f64() * 1e3,
        sum.as_secs_f64() * 1e3
    );
}

/// A MariaDB user of the agent's own (SELECT on the bench database only), so that
/// `USER_STATISTICS` counts its queries alone on a server other clients use too.
struct AgentDbUser {
    name: String,
    url: String,
}

impl AgentDbUser {
    async fn create(env: &Env, tag: &str) -> AgentDbUser {
        use mysql_async::prelude::Queryable;
        let name = format!("isy_bench_{tag}_{}", std::process::id());
        let mut c = support::admin_conn().await;
        c.query_drop(format!("DROP USER IF EXISTS '{name}'@'%'"))
            .await
            .unwrap();
        c.query_drop(format!("CREATE USER '{name}'@'%' IDENTIFIED BY 'bench-pw'"))
            .await
            .unwrap();
        c.query_drop(format!(
            "GRANT SELECT ON `{}`.* TO '{name}'@'%'",
            env.db.name
        ))
        .await
        .unwrap();
        let o = support::server_opts();
        let url = format!(
            "mysql://{name}:bench-pw@{}:{}/{}",
            o.ip_or_hostname(),
            o.tcp_port(),
            env.db.name
        );
        AgentDbUser { name, url }
    }

    /// CPU and busy seconds MariaDB spent on this user's queries so far.
    async fn cpu(&self) -> (f64, f64) {
        use mysql_async::prelude::Queryable;
        let mut c = support::admin_conn().await;
        let row: Option<(f64, f64)> = c
            .exec_first(
                "SELECT CPU_TIME, BUSY_TIME FROM information_schema.USER_STATISTICS WHERE USER = ?",
                (&self.name,),
            )
            .await
            .unwrap();
        row.unwrap_or((0.0, 0.0))
    }

    async fn drop_user(self) {
        use mysql_async::prelude::Queryable;
        let mut c = support::admin_conn().await;
        let _ = c
            .query_drop(format!("DROP USER IF EXISTS '{}'@'%'", self.name))
            .await;
    }
}

/// Switch MariaDB's `userstat` on (USER_STATISTICS); the previous value, to restore.
async fn userstat_on() -> bool {
    use mysql_async::prelude::Queryable;
    let mut c = support::admin_conn().await;
    let was: Option<i64> = c.query_first("SELECT @@GLOBAL.userstat").await.unwrap();
    if was != Some(1) {
        c.query_drop("SET GLOBAL userstat = 1").await.unwrap();
    }
    was == Some(1)
}

async fn userstat_restore(was_on: bool) {
    use mysql_async::prelude::Queryable;
    if !was_on {
        let mut c = support::admin_conn().await;
        let _ = c.query_drop("SET GLOBAL userstat = 0").await;
    }
}

/// The local `mariadbd` (or `mysqld`) process, for its CPU ticks.
fn mariadbd_pid() -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        matches!(comm.trim(), "mariadbd" | "mysqld").then_some(pid)
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The agent's change-detection counters from its metrics: stamps queries, checksums, tables.
async fn detection_counts(root: &str) -> Option<[f64; 3]> {
    let text = reqwest::Client::new()
        .get(format!("{root}/isymphony-sync/api/metrics"))
        .basic_auth(
            "manager",
            Some(isymphony_sync::config::DEFAULT_API_PASSWORD),
        )
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some([
        value("isymphony_sync_db_detection_queries_total{query=\"stamps\"}")?,
        value("isymphony_sync_db_detection_queries_total{query=\"checksum\"}")?,
        value("isymphony_sync_db_tables_checksummed_total")?,
    ])
}

/// A busy PBX: rows written to a table the sync does not read (call records), `per_sec` a
/// second, until `stop` is set. Returns how many were written.
fn cdr_writer(
    env: &Env,
    per_sec: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    let opts =
        mysql_async::Opts::from_url(&format!("{}/{}", support::server_url(), env.db.name)).unwrap();
    tokio::spawn(async move {
        use mysql_async::prelude::Queryable;
        let mut c = mysql_async::Conn::new(opts).await.unwrap();
        c.query_drop("CREATE TABLE IF NOT EXISTS cdr_bench (id INT AUTO_INCREMENT PRIMARY KEY, src VARCHAR(20), at DATETIME) ENGINE=InnoDB")
            .await
            .unwrap();
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            c.query_drop("INSERT INTO cdr_bench (src, at) VALUES ('1001', NOW())")
                .await
                .unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(1000 / per_sec.max(1))).await;
        }
        n
    })
}

async fn idle(n_ext: usize, idle_secs: u64, separate: bool, busy: bool) {
    let what = match (separate, busy) {
        (true, false) => "agent syncing to a separate server",
        (false, _) => "agent syncing to its embedded server, one process",
        (true, true) => "agent syncing to a separate server; 20 call records a second written to an unwatched table of the same database",
    };
    println!("== idle at {n_ext} extensions ({what}, default timing)");
    let env = Env::new(n_ext).await;
    let tag = match (separate, busy) {
        (true, false) => "sep",
        (false, _) => "emb",
        (true, true) => "busy",
    };
    let user = AgentDbUser::create(&env, tag).await;
    let cfg = config(&env, "idle", separate, &user.url);
    let agent = Agent::spawn(&cfg, &[("RUST_LOG", "warn,isymphony_sync::agent=info")]);
    let api = if separate {
        env.api.clone()
    } else {
        api(&agent.endpoint(0).await)
    };
    let t0 = Instant::now();
    wait_synced(&api, n_ext, Duration::from_secs(900))
        .await
        .expect("first sync");
    // Extensions come first; wait for the end of the whole first pass.
    agent
        .wait_log(Duration::from_secs(900), |v| {
            msg(v).starts_with("pass:") && v["result"] == "success"
        })
        .await;
    println!(
        "first sync of {n_ext} extensions: {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    // Let the first pass end and the allocator settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let root = agent.endpoint(0).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = busy.then(|| cdr_writer(&env, 20, stop.clone()));
    if busy {
        // Past the detector's 10 s window for the tables the first sync's setup wrote.
        tokio::time::sleep(Duration::from_secs(12)).await;
    }
    let det0 = detection_counts(&root).await;
    let pid = agent.pid();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let db_pid = mariadbd_pid();
    let db0 = db_pid.and_then(cpu_ticks);
    let (u0, b0) = user.cpu().await;
    let c0 = cpu_ticks(pid).unwrap();
    let load0 = loadavg();
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let c1 = cpu_ticks(pid).unwrap();
    let wall = w0.elapsed().as_secs_f64();
    let (u1, b1) = user.cpu().await;
    let db1 = db_pid.and_then(cpu_ticks);
    let det1 = detection_counts(&root).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = match writer {
        Some(w) => w.await.unwrap_or(0),
        None => 0,
    };
    let cpu = (c1 - c0) as f64 / hz / wall * 100.0;
    let rss = proc_status(pid, "VmRSS:").unwrap_or(0);
    let hwm = proc_status(pid, "VmHWM:").unwrap_or(0);
    println!(
        "idle: RSS {:.1} MB (peak during the first sync {:.1} MB); CPU {:.3}% of one core over {:.0}s",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        cpu,
        wall
    );
    println!(
        "idle MariaDB: the agent's queries {:.3}% of one core (USER_STATISTICS CPU_TIME {:.3} s, busy {:.3} s over {:.0}s); load average {load0} -> {}",
        (u1 - u0) / wall * 100.0,
        u1 - u0,
        b1 - b0,
        wall,
        loadavg()
    );
    match (det0, det1) {
        (Some(a), Some(b)) => println!(
            "idle detection over the window: {} stamps queries, {} CHECKSUM TABLE runs over {} tables{}",
            b[0] - a[0],
            b[1] - a[1],
            b[2] - a[2],
            if busy {
                format!(" ({written} call records written meanwhile)")
            } else {
                String::new()
            }
        ),
        _ => println!("idle detection: the agent's metrics were not readable"),
    }
    drop(agent);
    if let (Some(d0), Some(d1)) = (db0, db1) {
        // The same window without the agent: the difference is the agent's share, noisy when
        // other clients use the server.
        let w = Instant::now();
        tokio::time::sleep(Duration::from_secs(idle_secs)).await;
        let d2 = db_pid.and_then(cpu_ticks).unwrap_or(d1);
        let with = (d1 - d0) as f64 / hz / wall * 100.0;
        let without = (d2 - d1) as f64 / hz / w.elapsed().as_secs_f64() * 100.0;
        println!(
            "idle MariaDB: whole mariadbd process {with:.3}% of one core with the agent, {without:.3}% in as long a window after it stopped (all clients of the server)"
        );
    }
    user.drop_user().await;
}

fn main() {
    let rt = agents::runtime();
    rt.block_on(async {
        let changes = env_num("BENCH_CHANGES", 100);
        if changes > 0 {
            latency(env_num("BENCH_SMALL", 1000), changes).await;
        }
        let large = env_num("BENCH_LARGE", 10_000);
        if large == 0 {
            return;
        }
        let idle_secs = env_num("BENCH_IDLE_SECS", 30) as u64;
        detection_cost(large).await;
        let was_on = userstat_on().await;
        // BENCH_IDLE: which idle runs (default all three).
        let kinds = std::env::var("BENCH_IDLE").unwrap_or_else(|_| "separate,embedded,busy".into());
        for kind in kinds.split(',').map(str::trim) {
            match kind {
                "separate" => idle(large, idle_secs, true, false).await,
                "embedded" => idle(large, idle_secs, false, false).await,
                "busy" => idle(large, idle_secs, true, true).await,
                "" => {}
                other => println!("BENCH_IDLE: unknown run {other:?} (separate, embedded, busy)"),
            }
        }
        userstat_restore(was_on).await;
    });
}
