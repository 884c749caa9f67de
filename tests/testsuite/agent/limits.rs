//! The agent in daemon mode (real binary, real MariaDB, its embedded endpoint over loopback)
//! under hostile clients:
//!
//! * with an open-file limit of 512 and the default connection cap, 1,000 idle sockets,
//!   slowloris clients and a slow body neither starve a normal client nor the agent's own
//!   database and HTTP connections: a change made in the database still reaches the server;
//! * wrong passwords from 30 loopback addresses block that user name from loopback (one
//!   network), but not the agent's own passes, not another network, not another user name;
//! * 60 parallel `GET …/plan` open at most 2 database connections, counted by MariaDB
//!   (`information_schema.USER_STATISTICS` of a user made for the test), and 60 parallel
//!   `POST …/sync` run at most 2 passes.

use crate::support;
use support::agent;
use support::e2e;

use agent::*;
use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;
use mysql_async::prelude::Queryable;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const PW: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;
const T: Duration = Duration::from_secs(20);

struct Setup {
    db: support::TestDb,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let db = e2e::freepbx_db(3).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("voicemail.conf"), e2e::voicemail_text(3)).unwrap();
        Setup { db, dir }
    }

    /// An agent config with the embedded endpoint on `listen`, reading `db_url`.
    fn config(&self, listen: &str, db_url: &str, server_extra: &str) -> PathBuf {
        let d = self.dir.path();
        let text = format!(
            "[server]\nenabled = true\nhttp_listen = \"{listen}\"\ndata_dir = \"{}\"\n{server_extra}\n\
             [freepbx]\ndatabase_url = \"{db_url}\"\nconfig_file = \"{}\"\namportal_conf = \"{}\"\n\
             voicemail_conf = \"{}\"\npoll_interval = \"200ms\"\n\n\
             [sync]\ndebounce = \"100ms\"\nretry_backoff_max = \"1s\"\nstate_dir = \"{}\"\n",
            d.join("server").display(),
            d.join("freepbx.conf").display(),
            d.join("amportal.conf").display(),
            d.join("voicemail.conf").display(),
            d.join("state").display(),
        );
        let p = d.join("agent.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn db_url(&self) -> String {
        self.db.url()
    }
}

fn api_client(root: &str) -> Client {
    Client::new(&ClientConfig::new(
        format!("{root}/communication_manager/api/resource/"),
        "manager".to_string(),
        Secret::new(PW),
    ))
    .unwrap()
}

/// The display name of extension `ext` on the agent's endpoint at `root`.
async fn ext_name(root: &str, ext: &str) -> Option<String> {
    let api = api_client(root);
    let cs: CoreServer = api.get(paths::core_server_by_slug("default")).await.ok()?;
    let exts: Vec<Extension> = api.get(paths::extensions(&cs.id?)).await.ok()?;
    exts.into_iter()
        .find(|x| x.extension == ext)
        .map(|x| x.display_name)
}

/// A client whose connections leave from `ip`.
fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get_status(c: &reqwest::Client, url: &str, user: &str, pw: &str) -> (u16, String) {
    let r = c.get(url).basic_auth(user, Some(pw)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A non-loopback IPv4 address of this machine (another network than loopback), if any.
fn lan_ipv4() -> Option<Ipv4Addr> {
    let mut found = None;
    // SAFETY: getifaddrs fills a list we only read and then free.
    unsafe {
        let mut ifa: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifa) != 0 {
            return None;
        }
        let mut p = ifa;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_link_local() && found.is_none() {
                    found = Some(ip);
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifa);
    }
    found
}

/// The agent's root URL, once its first pass has brought extension 1002 across.
async fn synced(agent: &Agent) -> String {
    let root = agent.endpoint(0).await;
    assert!(
        eventually(T, || async { ext_name(&root, "1002").await.is_some() }).await,
        "{}",
        agent.dump()
    );
    root
}

async fn wait_idle(root: &str) {
    let c = http();
    assert!(
        eventually(T, || async {
            let Ok(r) = c
                .get(format!("{root}/isymphony-sync/api/status"))
                .basic_auth("manager", Some(PW))
                .send()
                .await
            else {
                return false;
            };
            let v: Value = r.json().await.unwrap_or(Value::Null);
            v["pass_running"] == false && v["pass_pending"] == false && v["last_pass"].is_object()
        })
        .await
    );
}

fn proc_kib(pid: i32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn open_files(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_socket_flood_the_agent_keeps_its_own_database_and_http_connections() {
    // The test holds 1,000+ sockets itself.
    support::process::raise_nofile();
    let s = Setup::new().await;
    let cfg = s.config("127.0.0.1:0", &s.db_url(), "");
    // The agent gets 512 open files, a common default, and the default connection cap.
    let agent = Agent::spawn_with(&cfg, &[], |cmd| unsafe {
        cmd.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: 512,
                rlim_max: 512,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    let root = synced(&agent).await;
    wait_idle(&root).await;
    let pid = agent.pid();
    let (fds0, rss0) = (open_files(pid), proc_kib(pid, "VmRSS:"));
    let addr = root.trim_start_matches("http://").to_string();

    // (A server that stops accepting leaves connects hanging in the backlog: give up on them.)
    let mut idle = Vec::new();
    for _ in 0..10 {
        let batch = (0..100)
            .map(|_| tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)));
        for s in futures::future::join_all(batch).await {
            if let Ok(Ok(s)) = s {
                idle.push(s);
            }
        }
    }
    eprintln!("{} idle sockets connected", idle.len());
    let connect = || async {
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr))
            .await
            .ok()
            .and_then(Result::ok)
    };
    let mut lorises = Vec::new();
    for _ in 0..5 {
        if let Some(mut c) = connect().await {
            let _ = c
                .write_all(b"GET /isymphony-sync/api/status HTTP/1.1\r\nHost: x\r\n")
                .await;
            lorises.push(c);
        }
    }
    let mut slow = connect().await;
    if let Some(c) = slow.as_mut() {
        let head = format!(
            "POST /isymphony-sync/api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("manager:{PW}")
            )
        );
        let _ = c.write_all(head.as_bytes()).await;
    }

    // The agent's own connections: a database change reaches its endpoint.
    let changed = Instant::now();
    s.db.exec("UPDATE users SET name = 'Flood Proof' WHERE extension = '1002'")
        .await;
    assert!(
        eventually(T, || async {
            ext_name(&root, "1002").await.as_deref() == Some("Flood Proof")
        })
        .await,
        "the change did not reach the server under the flood:\n{}",
        agent.dump()
    );
    let converged = changed.elapsed();
    // A normal client.
    let mut times = Vec::new();
    for _ in 0..9 {
        let c = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let t = Instant::now();
        let (st, _) = get_status(
            &c,
            &format!("{root}/isymphony-sync/api/status"),
            "manager",
            PW,
        )
        .await;
        assert_eq!(st, 200);
        times.push(t.elapsed());
    }
    times.sort();
    let (fds1, rss1, hwm) = (
        open_files(pid),
        proc_kib(pid, "VmRSS:"),
        proc_kib(pid, "VmHWM:"),
    );
    eprintln!(
        "daemon under 1,000 idle + 5 slowloris + 1 slow body: change converged in {converged:?}; \
         status GET median {:?} max {:?}; open files {fds0} -> {fds1} (limit 512); RSS {rss0} KiB \
         -> {rss1} KiB (peak {hwm} KiB)",
        times[4], times[8]
    );
    // At least 8 of the 9 under 100 ms.
    assert!(times[7] < Duration::from_millis(100), "{times:?}");
    assert!(fds1 <= fds0 + 256 + 5, "{fds0} -> {fds1}");
    assert!(rss1 < rss0 + 32 * 1024, "RSS {rss0} -> {rss1} KiB");
    drop((idle, lorises, slow));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_block_one_network_and_name_but_never_the_agent() {
    let s = Setup::new().await;
    let lan = lan_ipv4();
    let acl = match lan {
        Some(ip) => format!("acl = [\"127.0.0.0/8\", \"::1/128\", \"{ip}/32\"]\n"),
        None => {
            eprintln!(
                "SKIPPED PART: this machine has no non-loopback IPv4 address, so the \
                 'another network' checks are not run (loopback and user-name checks are)"
            );
            String::new()
        }
    };
    let cfg = s.config("0.0.0.0:0", &s.db_url(), &acl);
    let agent = Agent::spawn(&cfg, &[]);
    let root = agent.endpoint(0).await;
    let port = root.rsplit(':').next().unwrap().to_string();
    assert!(
        eventually(T, || async { ext_name(&root, "1002").await.is_some() }).await,
        "{}",
        agent.dump()
    );
    let status = |host: &str| format!("http://{host}:{port}/isymphony-sync/api/status");

    // One wrong password from each of 30 loopback addresses (limit: 10 per network and name).
    for i in 10..40 {
        let c = client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)));
        let (st, _) = get_status(&c, &status("127.0.0.1"), "manager", "wrong").await;
        assert!(st == 403, "127.0.0.{i}: {st}");
    }
    // Loopback is one network: a fresh address gets no fresh budget.
    let c = client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 77)));
    let (st, body) = get_status(&c, &status("127.0.0.1"), "manager", PW).await;
    assert_eq!(st, 403, "{body}");
    assert!(
        body.contains("Too many") && body.contains("try again"),
        "{body}"
    );

    // The agent's own passes into its endpoint are not locked out.
    let changed = agent.count(|v| msg(v).starts_with("pass:"));
    s.db.exec("UPDATE users SET name = 'Not Locked' WHERE extension = '1002'")
        .await;
    let pass = agent
        .wait_nth(changed, T, |v| {
            msg(v).starts_with("pass:") && v["applied"].as_u64().unwrap_or(0) >= 1
        })
        .await;
    assert_eq!(pass["result"], "success", "{}", agent.dump());

    if let Some(ip) = lan {
        let lan_c = client_from(IpAddr::V4(ip));
        let url = status(&ip.to_string());
        // Another network, the same name: let in.
        assert_eq!(get_status(&lan_c, &url, "manager", PW).await.0, 200);
        // Failures for another name from that network do not block the configured one.
        for _ in 0..15 {
            assert_eq!(get_status(&lan_c, &url, "admin", "guess").await.0, 403);
        }
        assert_eq!(get_status(&lan_c, &url, "manager", PW).await.0, 200);
        let lan_root = format!("http://{ip}:{port}");
        assert_eq!(
            ext_name(&lan_root, "1002").await.as_deref(),
            Some("Not Locked")
        );
    }
    // One warning per episode, naming the network.
    let warnings: Vec<Value> = agent
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|v| msg(v).contains("too many failed authentications"))
        .cloned()
        .collect();
    assert_eq!(
        warnings.len(),
        1 + usize::from(lan.is_some()),
        "{warnings:?}"
    );
    assert!(
        warnings[0]["network"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{warnings:?}"
    );
    assert!(!agent.dump().contains("wrong") && !agent.dump().contains("guess"));
}

/// A MariaDB user made for one test, dropped afterwards; its connections are counted by
/// MariaDB (`userstat`).
struct CountedUser {
    name: String,
}

impl CountedUser {
    async fn create(db: &str) -> CountedUser {
        let name = support::unique_name("isy_h6");
        let mut c = support::admin_conn().await;
        // Per-user connection statistics (a global switch; only collects counters).
        c.query_drop("SET GLOBAL userstat = 1").await.unwrap();
        // At most 10 at once: a regression cannot take the shared server's connections.
        c.query_drop(format!(
            "CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}' WITH MAX_USER_CONNECTIONS 10"
        ))
        .await
        .unwrap();
        c.query_drop(format!("GRANT ALL PRIVILEGES ON `{db}`.* TO '{name}'@'%'"))
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        CountedUser { name }
    }

    fn url(&self, db: &str) -> String {
        let o = support::server_opts();
        format!(
            "mysql://{}:pw-{}@{}:{}/{db}",
            self.name,
            self.name,
            o.ip_or_hostname(),
            o.tcp_port()
        )
    }

    /// Connections opened (and refused) for this user so far, by MariaDB's count.
    async fn connections(&self) -> u64 {
        let mut c = support::admin_conn().await;
        let row: Option<(u64, u64)> = c
            .exec_first(
                "SELECT TOTAL_CONNECTIONS, DENIED_CONNECTIONS FROM information_schema.USER_STATISTICS \
                 WHERE USER = ?",
                (self.name.as_str(),),
            )
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        row.map(|(t, d)| t + d).unwrap_or(0)
    }
}

impl Drop for CountedUser {
    fn drop(&mut self) {
        support::admin_cleanup(vec![format!("DROP USER IF EXISTS '{}'@'%'", self.name)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_parallel_plans_open_at_most_two_database_connections() {
    let s = Setup::new().await;
    let user = CountedUser::create(&s.db.name).await;
    let cfg = s.config("127.0.0.1:0", &user.url(&s.db.name), "");
    let agent = Agent::spawn(&cfg, &[]);
    let root = synced(&agent).await;
    wait_idle(&root).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let c = http();
    let before = user.connections().await;
    let plans = (0..60).map(|_| {
        c.get(format!("{root}/isymphony-sync/api/plan"))
            .basic_auth("manager", Some(PW))
            .send()
    });
    let mut answers = Vec::new();
    for r in futures::future::join_all(plans).await {
        let r = r.unwrap();
        let age = r.headers().contains_key("age");
        answers.push((r.status().as_u16(), age, r.json::<Value>().await.unwrap()));
    }
    let after_plans = user.connections().await;
    let ages: Vec<f64> = answers
        .iter()
        .filter_map(|a| a.2["age_seconds"].as_f64())
        .collect();
    eprintln!(
        "60 parallel GET /plan: {} database connections opened (MariaDB USER_STATISTICS); {} \
         answered 200; ages {:.3}..{:.3} s",
        after_plans - before,
        answers.iter().filter(|a| a.0 == 200).count(),
        ages.iter().cloned().reduce(f64::min).unwrap_or(f64::NAN),
        ages.iter().cloned().reduce(f64::max).unwrap_or(f64::NAN)
    );
    assert!(
        after_plans - before <= 2,
        "{} connections",
        after_plans - before
    );
    for (status, age, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert!(*age, "no Age header");
        assert_eq!(v["dry_run"], true, "{v}");
        assert!(v["age_seconds"].as_f64().is_some(), "{v}");
    }

    // POST …/sync stays coalesced: 60 requests, at most 2 passes.
    let passes_before = agent.count(|v| msg(v).starts_with("pass:"));
    let posts = (0..60).map(|_| {
        c.post(format!("{root}/isymphony-sync/api/sync"))
            .basic_auth("manager", Some(PW))
            .header("content-type", "application/json")
            .body("{}")
            .send()
    });
    for r in futures::future::join_all(posts).await {
        assert_eq!(r.unwrap().status().as_u16(), 204);
    }
    agent
        .wait_nth(passes_before, T, |v| msg(v).starts_with("pass:"))
        .await;
    wait_idle(&root).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let passes = agent.count(|v| msg(v).starts_with("pass:")) - passes_before;
    let after_sync = user.connections().await;
    eprintln!(
        "60 parallel POST /sync: {passes} passes, {} database connections",
        after_sync - after_plans
    );
    assert!((1..=2).contains(&passes), "{passes} passes");
    assert!(
        after_sync - after_plans <= 2,
        "{}",
        after_sync - after_plans
    );
}
