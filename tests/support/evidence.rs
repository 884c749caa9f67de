//! Helpers for the evidence tests: the embedded server as a separate child process
//! (`--serve-only`, so it outlives a killed agent), the agent binary run to completion with all
//! its output captured, duplicate counting by natural key on the server, and raw snapshots of
//! objects the agent does not own.

use isymphony_sync::api::client::{Client, ClientConfig};
use isymphony_sync::api::paths;
use isymphony_sync::api::types::*;
use isymphony_sync::secret::Secret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::process::BIN;

/// The embedded endpoint in a child process of its own (`--serve-only`), on a loopback port 0.
pub struct ServerProc {
    pub child: super::process::Spawned,
    pub base_url: String,
    /// Every stderr line (JSON log lines) so far.
    pub lines: Arc<Mutex<Vec<String>>>,
    pub config: PathBuf,
}

impl ServerProc {
    /// Start `--serve-only` with `[server]` on `data_dir`, `password`, and `extra` TOML appended
    /// (e.g. a `[server.faults]` section). Waits until the endpoint listens.
    pub fn start(dir: &Path, data_dir: &Path, password: &str, extra: &str, rust_log: &str) -> Self {
        let config = dir.join(format!("server-{}.toml", rand::random::<u32>() & 0xff_ffff));
        let text = format!(
            "[server]\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = {:?}\npassword = {:?}\n{extra}\n",
            data_dir.display().to_string(),
            password
        );
        std::fs::write(&config, text).unwrap();
        let mut child = super::process::spawn(
            super::process::bin()
                .arg("--config")
                .arg(&config)
                .arg("--serve-only")
                .arg("--log-format")
                .arg("json")
                .env("RUST_LOG", rust_log)
                .env_remove("NOTIFY_SOCKET")
                .env_remove("JOURNAL_STREAM")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let l2 = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    l2.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let base_url = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                v["base_url"].as_str().map(str::to_string)
            });
            if let Some(u) = found {
                break u;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "server exited ({st}) or did not start within 30 s:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        ServerProc {
            child,
            base_url,
            lines,
            config,
        }
    }

    /// SIGTERM and wait (the store is closed cleanly).
    pub fn stop(mut self) -> Vec<String> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        // Let the reader threads drain the pipes.
        std::thread::sleep(Duration::from_millis(50));
        let out = self.lines.lock().unwrap().clone();
        out
    }

    pub fn client(&self, password: &str) -> Client {
        api_client(&self.base_url, password)
    }
}

pub fn api_client(base_url: &str, password: &str) -> Client {
    let mut cc = ClientConfig::new(base_url, "manager", Secret::new(password));
    cc.backoff_base = Duration::from_millis(20);
    Client::new(&cc).unwrap()
}

/// Output of one run of the agent binary.
#[derive(Debug)]
pub struct RunOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Run the agent binary to completion with `args`, capturing everything.
pub fn run_bin(config: &Path, args: &[&str], env: &[(&str, &str)]) -> RunOutput {
    let mut cmd = super::process::bin();
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().unwrap();
    RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: t.elapsed(),
    }
}

/// A dry run of the agent on `config` (a full verify when `full`), off the test's runtime;
/// panics, naming `what`, unless it found nothing to do (exit 0).
pub async fn assert_converged(config: &Path, full: bool, what: &str) {
    let config = config.to_path_buf();
    let args: &'static [&'static str] = if full {
        &["--dry-run", "--full"]
    } else {
        &["--dry-run"]
    };
    let out = tokio::task::spawn_blocking(move || run_bin(&config, args, &[]))
        .await
        .expect("the dry run's thread did not panic");
    assert_eq!(
        out.code, 0,
        "{what}: not converged:\n{}\n{}",
        out.stdout, out.stderr
    );
}

/// The id of core server `default`.
pub async fn core_server_id(api: &Client) -> String {
    let c: CoreServer = api
        .get(paths::core_server_by_slug("default"))
        .await
        .unwrap();
    c.id.unwrap()
}

fn dups<'a>(kind: &str, keys: impl Iterator<Item = &'a str>, out: &mut Vec<String>) -> usize {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut n = 0;
    for k in keys {
        n += 1;
        *seen.entry(k).or_default() += 1;
    }
    for (k, c) in seen {
        if c > 1 {
            out.push(format!("{kind} {k:?} x{c}"));
        }
    }
    n
}

/// Objects on the server, by kind, after checking natural keys.
#[derive(Debug, Default)]
pub struct Census {
    /// Duplicates found, one line each (`extension "1001" x2`). Empty means none.
    pub duplicates: Vec<String>,
    /// Objects counted by kind.
    pub counts: BTreeMap<&'static str, usize>,
}

/// Count every object on the server by natural key: core servers by slug; in core server
/// `default` extensions by `extension`, users by `username`, queues, conference rooms and parking
/// lots by `identifier`, PBX servers by host, voicemail agent identifiers by value;
/// administrators by user name; with `subs`, each user's e-mail addresses by address and phone
/// numbers by (type, number).
pub async fn census(api: &Client, subs: bool) -> Census {
    let mut c = Census::default();
    let d = &mut c.duplicates;
    let cores: Vec<CoreServer> = api.get(paths::core_servers()).await.unwrap();
    c.counts.insert(
        "core_server",
        dups("core server", cores.iter().map(|x| x.slug.as_str()), d),
    );
    // No core server `default` yet (a run killed before its first write): nothing else.
    let Some(cs) = cores
        .iter()
        .find(|x| x.slug == "default")
        .and_then(|x| x.id.clone())
    else {
        return c;
    };
    let exts: Vec<Extension> = api.get(paths::extensions(&cs)).await.unwrap();
    c.counts.insert(
        "extension",
        dups("extension", exts.iter().map(|x| x.extension.as_str()), d),
    );
    let users: Vec<User> = api.get(paths::users(&cs)).await.unwrap();
    c.counts.insert(
        "user",
        dups("user", users.iter().map(|x| x.username.as_str()), d),
    );
    let queues: Vec<Queue> = api.get(paths::queues(&cs)).await.unwrap();
    c.counts.insert(
        "queue",
        dups("queue", queues.iter().map(|x| x.identifier.as_str()), d),
    );
    let rooms: Vec<ConferenceRoom> = api.get(paths::conference_rooms(&cs)).await.unwrap();
    c.counts.insert(
        "conference_room",
        dups(
            "conference room",
            rooms.iter().map(|x| x.identifier.as_str()),
            d,
        ),
    );
    let lots: Vec<ParkingLot> = api.get(paths::parking_lots(&cs)).await.unwrap();
    c.counts.insert(
        "parking_lot",
        dups("parking lot", lots.iter().map(|x| x.identifier.as_str()), d),
    );
    let pbx: Vec<PbxServer> = api.get(paths::pbx_servers(&cs)).await.unwrap();
    c.counts.insert(
        "pbx_server",
        dups("pbx server", pbx.iter().map(|x| x.host.as_str()), d),
    );
    let vm: Vec<String> = api
        .get(paths::voicemail_agent_identifiers(&cs))
        .await
        .unwrap();
    c.counts.insert(
        "voicemail_agent_identifier",
        dups(
            "voicemail agent identifier",
            vm.iter().map(String::as_str),
            d,
        ),
    );
    let admins: Vec<Administrator> = api.get(paths::administrators()).await.unwrap();
    c.counts.insert(
        "administrator",
        dups(
            "administrator",
            admins.iter().map(|x| x.user_name.as_str()),
            d,
        ),
    );
    if subs {
        use futures::stream::{self, StreamExt};
        let per_user: Vec<(String, Vec<EmailAddress>, Vec<PhoneNumber>)> =
            stream::iter(users.iter().map(|u| {
                let cs = cs.clone();
                let id = u.id.clone().unwrap();
                let name = u.username.clone();
                async move {
                    let e: Vec<EmailAddress> =
                        api.get(paths::email_addresses(&cs, &id)).await.unwrap();
                    let p: Vec<PhoneNumber> =
                        api.get(paths::phone_numbers(&cs, &id)).await.unwrap();
                    (name, e, p)
                }
            }))
            .buffer_unordered(8)
            .collect()
            .await;
        let (mut ne, mut np) = (0, 0);
        for (name, e, p) in &per_user {
            let keys: Vec<String> = e.iter().map(|x| x.address.to_lowercase()).collect();
            ne += dups(
                &format!("e-mail of {name}"),
                keys.iter().map(String::as_str),
                d,
            );
            let keys: Vec<String> = p
                .iter()
                .map(|x| format!("{}:{}", x.kind, x.number))
                .collect();
            np += dups(
                &format!("phone of {name}"),
                keys.iter().map(String::as_str),
                d,
            );
        }
        c.counts.insert("email", ne);
        c.counts.insert("phone", np);
    }
    c
}

/// Raw GET of `path` as text (200 expected): byte-level comparison of foreign objects.
pub async fn raw_get(base_url: &str, password: &str, path: &str) -> String {
    let r = reqwest::Client::new()
        .get(format!("{base_url}{path}"))
        .basic_auth("manager", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.text().await.unwrap()
}

/// POST JSON, 204 expected.
pub async fn raw_post(base_url: &str, password: &str, path: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(format!("{base_url}{path}"))
        .basic_auth("manager", Some(password))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "POST {path}: {}", r.text().await.unwrap());
}

/// PUT JSON, 204 expected.
pub async fn raw_put(base_url: &str, password: &str, path: &str, body: Value) {
    let r = reqwest::Client::new()
        .put(format!("{base_url}{path}"))
        .basic_auth("manager", Some(password))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "PUT {path}: {}", r.text().await.unwrap());
}

/// The agent's TOML for `db_url`, `vm`, the target and `state_dir` (no embedded endpoint).
pub fn agent_toml(db_url: &str, vm: &Path, url: &str, state: &Path, concurrency: usize) -> String {
    let sync_extra = format!("concurrency = {concurrency}\n");
    super::e2e::agent_toml(db_url, vm, url, state, &sync_extra)
}
