//! The store's integrity and privacy, with the real binary: damage to the store log is noticed
//! at start (a body that is not JSON, a 0-byte or missing file, a damaged record followed by
//! intact ones), the start is refused naming the file and `--repair`, and `--repair` starts
//! with what is readable; an unfinished write at the end is dropped without a refusal; a
//! SQLite store of an earlier version is carried over; every file the endpoint creates is 0600
//! in a 0700 data_dir even under umask 000, and a data_dir others can read is warned about.

use isymphony_sync::server::store::log::{self, Record};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AUTH: (&str, &str) = ("manager", isymphony_sync::config::DEFAULT_API_PASSWORD);

use crate::support;
/// A child process killed on drop (a failed assertion leaves nothing running).
use support::process::Spawned as Proc;

enum Started {
    Running {
        child: Proc,
        base: String,
        log: Arc<Mutex<Vec<String>>>,
    },
    Exited {
        code: i32,
        log: String,
    },
}

/// `--serve-only` under `umask`, until it listens or exits.
fn serve(config: &Path, args: &[&str], umask: u32) -> Started {
    let mut cmd = support::process::bin();
    cmd.args(["--serve-only", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: umask is async-signal-safe; it only sets the child's file-creation mask.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    let mut child = support::process::spawn(&mut cmd);
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = log.lock().unwrap().iter().find_map(|l| {
            l.find("http://127.0.0.1:").map(|i| {
                l[i..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect::<String>()
            })
        });
        if let Some(base) = found {
            return Started::Running { child, base, log };
        }
        if let Some(st) = child.try_wait().unwrap() {
            reader.join().unwrap();
            let log = log.lock().unwrap().join("\n");
            return Started::Exited {
                code: st.code().unwrap_or(-1),
                log,
            };
        }
        assert!(Instant::now() < deadline, "neither listening nor exited");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = support::process::write_serve_config(dir.path(), &dir.path().join("data"));
        Fixture { dir, config }
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn db(&self) -> PathBuf {
        self.data().join("store.log")
    }
    fn start(&self, args: &[&str]) -> (Proc, String, Arc<Mutex<Vec<String>>>) {
        match serve(&self.config, args, 0o022) {
            Started::Running { child, base, log } => (child, base, log),
            Started::Exited { code, log } => panic!("exited {code}: {log}"),
        }
    }
    fn refused(&self) -> String {
        match serve(&self.config, &[], 0o022) {
            Started::Exited { code, log } => {
                assert_eq!(code, 1, "a refused store exits 1: {log}");
                log
            }
            Started::Running { .. } => panic!("a damaged store was opened"),
        }
    }
}

async fn send(base: &str, m: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = c
        .request(m, format!("{base}{path}"))
        .basic_auth(AUTH.0, Some(AUTH.1));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// The core server and `n` extensions, each its own commit.
async fn populate(base: &str, n: usize) {
    let cs = json!({"id": "cs1", "slug": "default", "name": "Default"});
    let post = reqwest::Method::POST;
    assert_eq!(
        send(base, post, "server/coreServers", Some(cs)).await.0,
        204
    );
    for i in 0..n {
        assert_eq!(post_extension(base, i).await, 204);
    }
}

/// POST extension `e<i>` (number 1000 + i); the status.
async fn post_extension(base: &str, i: usize) -> u16 {
    let e = json!({"id": format!("e{i}"), "extension": format!("{}", 1000 + i)});
    let post = reqwest::Method::POST;
    send(base, post, "asterisk/cs1/extensions", Some(e)).await.0
}

async fn ids(base: &str) -> Vec<String> {
    let (s, v) = send(base, reqwest::Method::GET, "asterisk/cs1/extensions", None).await;
    assert_eq!(s, 200, "{v}");
    let list = v.as_array().unwrap();
    list.iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn stop(mut child: Proc, sig: i32) {
    unsafe { libc::kill(child.id() as i32, sig) };
    child.wait().unwrap();
}

fn aside_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".damaged-"))
        .collect();
    v.sort();
    v
}

/// The refusal names the file, says what is wrong and what to do.
fn assert_refusal(log: &str, file: &Path, what: &str) {
    eprintln!("refused: {}", log.lines().last().unwrap_or_default());
    assert!(log.contains(&file.display().to_string()), "{log}");
    assert!(log.contains(what), "{what}: {log}");
    assert!(log.contains("--repair") && log.contains("backup"), "{log}");
}

/// The log's committed records, each changed by `f` (None drops it), written back as one
/// committed group.
fn rewrite_log(path: &Path, f: impl Fn(Record) -> Option<Record>) {
    let bytes = std::fs::read(path).unwrap();
    let scan = log::scan(&bytes).unwrap();
    assert_eq!(scan.tail, log::Tail::Clean);
    let mut out = log::HEADER.to_vec();
    for r in scan.records.into_iter().filter_map(f) {
        log::encode(&r, &mut out);
    }
    log::encode(&Record::Commit, &mut out);
    std::fs::write(path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_stops_the_start_and_repair_drops_it() {
    let f = Fixture::new();
    let (child, base, _) = f.start(&[]);
    populate(&base, 3).await;
    stop(child, libc::SIGTERM);
    rewrite_log(&f.db(), |r| match r {
        Record::Put {
            seq,
            scope,
            id: "e1",
            key,
            ..
        } => Some(Record::Put {
            seq,
            scope,
            id: "e1",
            key,
            body: b"{\"id\": \"e1\", trunc",
        }),
        other => Some(other),
    });
    let log = f.refused();
    assert_refusal(&log, &f.db(), "not valid JSON (first: cs/cs1/extensions/e1");
    let (child, base, _) = f.start(&["--repair"]);
    assert_eq!(ids(&base).await, ["e0", "e2"]);
    stop(child, libc::SIGTERM);
    assert_eq!(
        aside_files(&f.data()).len(),
        1,
        "a copy of the damaged store is kept"
    );
    // Repaired for good: the next start needs no flag.
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e2"]);
    stop(child, libc::SIGTERM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_store_file_stops_the_start() {
    let f = Fixture::new();
    let (child, base, _) = f.start(&[]);
    populate(&base, 2).await;
    stop(child, libc::SIGTERM);
    std::fs::File::create(f.db()).unwrap(); // truncated to 0 bytes
    let log = f.refused();
    assert_refusal(&log, &f.db(), "empty (0 bytes)");
    std::fs::remove_file(f.db()).unwrap();
    let log = f.refused();
    assert_refusal(&log, &f.db(), "missing");
    let (child, base, _) = f.start(&["--repair"]);
    let (s, _) = send(&base, reqwest::Method::GET, "server/coreServers", None).await;
    assert_eq!(s, 200);
    stop(child, libc::SIGTERM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_in_the_middle_of_the_log_stops_the_start() {
    let f = Fixture::new();
    let (child, base, _) = f.start(&[]);
    populate(&base, 6).await;
    stop(child, libc::SIGKILL); // each POST one group, appended
    let mut bytes = std::fs::read(f.db()).unwrap();
    // Flip one byte two thirds in: the writes before it are readable, the ones after it
    // would silently vanish.
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x55;
    std::fs::write(f.db(), &bytes).unwrap();
    let log = f.refused();
    assert_refusal(&log, &f.db(), "intact record(s) follow it");
    let (child, base, _) = f.start(&["--repair"]);
    // What is readable is kept: the earlier writes, in order, not the later ones.
    let kept = ids(&base).await;
    let all: Vec<String> = (0..6).map(|i| format!("e{i}")).collect();
    assert!(!kept.is_empty() && kept.len() < all.len(), "{kept:?}");
    assert_eq!(kept[..], all[..kept.len()]);
    stop(child, libc::SIGTERM);
    assert_eq!(aside_files(&f.data()).len(), 1);
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, kept, "repaired for good");
    stop(child, libc::SIGTERM);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_write_at_the_end_is_dropped_and_the_start_goes_on() {
    let f = Fixture::new();
    let (child, base, _) = f.start(&[]);
    populate(&base, 3).await;
    stop(child, libc::SIGKILL);
    // Half of a group, as a process killed inside its write leaves it.
    let mut group = Vec::new();
    let body = br#"{"id":"e9","extension":"1009"}"#;
    log::encode(
        &Record::Put {
            seq: 99,
            scope: "cs/cs1/extensions",
            id: "e9",
            key: Some("1009"),
            body,
        },
        &mut group,
    );
    log::encode(&Record::Commit, &mut group);
    let mut bytes = std::fs::read(f.db()).unwrap();
    bytes.extend_from_slice(&group[..group.len() / 2]);
    std::fs::write(f.db(), &bytes).unwrap();
    let (child, base, log) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e1", "e2"]);
    let warned = log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("unfinished write"));
    assert!(warned, "{:?}", log.lock().unwrap());
    // Writes go on after the acknowledged ones, and the next start reads them all.
    assert_eq!(post_extension(&base, 3).await, 204);
    stop(child, libc::SIGKILL);
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e1", "e2", "e3"]);
    stop(child, libc::SIGTERM);
    assert!(aside_files(&f.data()).is_empty(), "not damage");
}

/// The objects of the log, as the SQLite store of earlier versions held them, in
/// `store.sqlite3` (only the extensions `keep` accepts).
fn sqlite_store_from_log(f: &Fixture, keep: impl Fn(&str) -> bool) -> PathBuf {
    let bytes = std::fs::read(f.db()).unwrap();
    let scan = log::scan(&bytes).unwrap();
    let sqlite = f.data().join("store.sqlite3");
    let c = rusqlite::Connection::open(&sqlite).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE objects (scope TEXT NOT NULL, id TEXT NOT NULL, \
         seq INTEGER NOT NULL, nkey TEXT, body TEXT NOT NULL, PRIMARY KEY (scope, id))",
    )
    .unwrap();
    for r in &scan.records {
        if let Record::Put {
            seq,
            scope,
            id,
            key,
            body,
        } = r
        {
            if scope.ends_with("/extensions") && !keep(id) {
                continue;
            }
            let body = std::str::from_utf8(body).unwrap();
            c.execute(
                "INSERT OR REPLACE INTO objects VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![scope, id, *seq as i64, key, body],
            )
            .unwrap();
        }
    }
    sqlite
}

fn migrated_copies(f: &Fixture) -> usize {
    std::fs::read_dir(f.data())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy()
                .starts_with("store.sqlite3.migrated-")
        })
        .count()
}

/// A data_dir of an earlier version (the objects in `store.sqlite3`, as it wrote them) is
/// carried over into the log at the first start; the SQLite file is kept, renamed. An earlier
/// version run again on the same data_dir later (its file newer than the log) is carried over
/// again; a stale one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_earlier_version_is_carried_over() {
    let f = Fixture::new();
    let (child, base, _) = f.start(&[]);
    populate(&base, 4).await;
    stop(child, libc::SIGTERM);
    let sqlite = sqlite_store_from_log(&f, |_| true);
    std::fs::remove_file(f.db()).unwrap();
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e1", "e2", "e3"]);
    stop(child, libc::SIGTERM);
    assert!(f.db().exists());
    assert!(!sqlite.exists());
    assert_eq!(migrated_copies(&f), 1, "the SQLite store is kept");
    // The log alone from now on.
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e1", "e2", "e3"]);
    stop(child, libc::SIGTERM);
    // An earlier version ran again (and deleted two extensions): its newer file wins.
    std::thread::sleep(Duration::from_millis(20));
    sqlite_store_from_log(&f, |id| id == "e0" || id == "e3");
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e3"]);
    stop(child, libc::SIGTERM);
    assert!(!sqlite.exists());
    // A SQLite file older than the log (left by a start stopped before renaming it): the
    // log wins, and the file is renamed out of the way.
    let stale = sqlite_store_from_log(&f, |_| true);
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let file = std::fs::File::options().write(true).open(&stale).unwrap();
    file.set_modified(an_hour_ago).unwrap();
    drop(file);
    let (child, base, _) = f.start(&[]);
    assert_eq!(post_extension(&base, 7).await, 204);
    stop(child, libc::SIGTERM);
    assert!(!sqlite.exists());
    let (child, base, _) = f.start(&[]);
    assert_eq!(ids(&base).await, ["e0", "e3", "e7"]);
    stop(child, libc::SIGTERM);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_private_whatever_the_umask() {
    let f = Fixture::new();
    let Started::Running { child, base, .. } = serve(&f.config, &[], 0o000) else {
        panic!("did not start");
    };
    populate(&base, 3).await;
    // While running: the log and the lock file.
    let names: Vec<PathBuf> = std::fs::read_dir(f.data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(names.len() >= 2, "{names:?}");
    assert_eq!(mode(&f.data()), 0o700);
    for p in &names {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    stop(child, libc::SIGTERM);
    // An existing data_dir that others can read: the endpoint starts, with a warning.
    std::fs::set_permissions(f.data(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (child, _, log) = f.start(&[]);
    let warned = log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("can be read by other users") && l.contains("chmod 700"));
    assert!(warned, "{:?}", log.lock().unwrap());
    stop(child, libc::SIGTERM);
}
