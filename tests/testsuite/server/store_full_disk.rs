//! A failed commit (the store log's append on a full disk) leaves no phantom. The real binary
//! (`--serve-only`) keeps its store on a 2 MB tmpfs; the disk is filled until commits fail;
//! then every GET must match what survives a restart (SIGKILL), a write that failed must not
//! be "already there" (409), and once space is freed writes succeed again without a restart.

use isymphony_sync::server::store::log;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::process::Spawned as Child;

use crate::support;
use support::process;
use support::tmpfs;

const AUTH: (&str, &str) = ("manager", isymphony_sync::config::DEFAULT_API_PASSWORD);

struct Srv {
    child: Child,
    base: String,
    c: reqwest::Client,
}

impl Srv {
    fn start(config: &std::path::Path) -> Srv {
        let (child, base) = process::spawn_server(config);
        let c = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Srv { child, base, c }
    }
    async fn send(&self, m: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .c
            .request(m, format!("{}{path}", self.base))
            .basic_auth(AUTH.0, Some(AUTH.1));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let s = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn post_ext(&self, id: &str, pad: &str) -> u16 {
        let body = json!({"id": id, "extension": id, "displayName": pad});
        self.send(reqwest::Method::POST, "asterisk/cs1/extensions", Some(body))
            .await
            .0
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    /// SIGKILL (done by drop, so a failed assertion leaves no process behind).
    fn kill(self) {}
}

impl Drop for Srv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every id listed, and for each one GET by id answers the same object.
async fn census(s: &Srv) -> Vec<Value> {
    let (st, list) = s.get("asterisk/cs1/extensions").await;
    assert_eq!(st, 200);
    let list = list.as_array().unwrap().clone();
    for e in &list {
        let id = e["id"].as_str().unwrap();
        let (st, one) = s.get(&format!("asterisk/cs1/extensions/{id}")).await;
        assert_eq!((st, &one), (200, e), "GET {id} differs from the listing");
    }
    list
}

fn ids_of(list: &[Value]) -> BTreeSet<String> {
    list.iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// POST 2 KiB objects eight at a time (group commits) until 16 have failed: (acknowledged,
/// failed, attempted).
async fn fill_up(s: &Srv, pad: &str) -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let (mut acked, mut failed) = (BTreeSet::new(), BTreeSet::new());
    let mut n = 0;
    while failed.len() < 16 && n < 4000 {
        let ids: Vec<String> = (n..n + 8).map(|i| format!("{}", 10_000 + i)).collect();
        n += 8;
        let got = futures::future::join_all(ids.iter().map(|id| s.post_ext(id, pad))).await;
        for (id, st) in ids.into_iter().zip(got) {
            match st {
                204 => acked.insert(id),
                500 => failed.insert(id),
                other => panic!("POST {id}: unexpected {other}"),
            };
        }
    }
    (acked, failed, n)
}

/// One at a time until three fail, each failure checked for a phantom; the failed ids.
async fn fail_while_full(s: &Srv, pad: &str, acked: &mut BTreeSet<String>) -> BTreeSet<String> {
    let mut failed_here = BTreeSet::new();
    for round in 0..50 {
        let id = format!("{}", 90_000 + round);
        match s.post_ext(&id, pad).await {
            500 => {
                assert_eq!(s.get(&format!("asterisk/cs1/extensions/{id}")).await.0, 404);
                failed_here.insert(id);
            }
            204 => {
                acked.insert(id);
            }
            other => panic!("POST {id}: unexpected {other}"),
        }
        if failed_here.len() >= 3 {
            break;
        }
    }
    failed_here
}

/// Where a test's server keeps its store: a fresh 2 MB tmpfs, and its config file.
struct SmallDisk {
    fs: tmpfs::Tmpfs,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    _conf_dir: tempfile::TempDir,
}

/// The real binary serving from a store on a fresh 2 MB tmpfs, its core server `cs1` created;
/// None (the reason printed) where no tmpfs can be mounted.
async fn small_disk() -> Option<(SmallDisk, Srv)> {
    let fs = tmpfs::Tmpfs::mount("2m")?;
    let conf_dir = tempfile::tempdir().unwrap();
    let data = fs.path.join("data");
    let config = support::process::write_serve_config(conf_dir.path(), &data);
    let s = Srv::start(&config);
    let cs = json!({"id": "cs1", "slug": "default", "name": "Default"});
    let posted = s.send(reqwest::Method::POST, "server/coreServers", Some(cs));
    assert_eq!(posted.await.0, 204);
    let disk = SmallDisk {
        fs,
        data,
        config,
        _conf_dir: conf_dir,
    };
    Some((disk, s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_leaves_no_phantom_and_writes_resume_when_space_returns() {
    let Some((disk, s)) = small_disk().await else {
        return;
    };
    // Leave ~320 KiB free, then write until commits fail.
    let filler = disk.fs.path.join("filler");
    let keep = 320 * 1024;
    let fill = disk.fs.free().saturating_sub(keep) as usize;
    std::fs::write(&filler, vec![b'x'; fill]).unwrap();
    let pad = "p".repeat(2048);
    let (mut acked, mut failed, n) = fill_up(&s, &pad).await;
    assert!(!failed.is_empty(), "the disk never filled ({n} writes)");
    eprintln!(
        "full disk: {} writes acknowledged, {} answered 500 (of {n})",
        acked.len(),
        failed.len()
    );
    // No phantom: a failed write is not readable, and posting it again is not "already there".
    for id in &failed {
        let (st, body) = s.get(&format!("asterisk/cs1/extensions/{id}")).await;
        assert_eq!(st, 404, "phantom {id}: {body}");
    }
    let retry = failed.iter().next().unwrap().clone();
    let again = s.post_ext(&retry, &pad).await;
    assert_ne!(
        again, 409,
        "a failed write must not count as already stored"
    );
    if again == 204 {
        failed.remove(&retry);
        acked.insert(retry.clone());
    }
    let before = census(&s).await;
    assert_eq!(
        ids_of(&before),
        acked,
        "memory must hold exactly the acknowledged writes"
    );
    // What survives a restart (SIGKILL, disk still full) is what was listed.
    s.kill();
    let s = Srv::start(&disk.config);
    assert_eq!(census(&s).await, before, "memory and disk differed");
    // This process, too, fails writes while the disk is full, and leaves no phantom of them.
    let failed_here = fail_while_full(&s, &pad, &mut acked).await;
    assert!(
        !failed_here.is_empty(),
        "the restarted server never hit the full disk"
    );
    // Space again: the same process accepts writes without a restart, failed ids included.
    std::fs::remove_file(&filler).unwrap();
    let resumed: Vec<String> = failed_here
        .iter()
        .chain(failed.iter().take(4))
        .cloned()
        .collect();
    for id in &resumed {
        assert_eq!(
            s.post_ext(id, &pad).await,
            204,
            "POST {id} after freeing space"
        );
        acked.insert(id.clone());
    }
    let after = census(&s).await;
    assert_eq!(ids_of(&after), acked);
    s.kill();
    let s = Srv::start(&disk.config);
    assert_eq!(census(&s).await, after, "what was served is what survived");
    s.kill();
}

/// A store that survived a full disk starts again, the exact sequence: fill the file system
/// (writes answered 500), free space, write again (204), SIGKILL, restart. The failed groups
/// leave nothing in the log, so the store starts, with every acknowledged write and the one
/// after recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_survived_a_full_disk_starts_again_after_sigkill() {
    let Some((disk, s)) = small_disk().await else {
        return;
    };
    let pad = "p".repeat(2048);
    let mut acked = BTreeSet::new();
    for i in 0..16 {
        let id = format!("{}", 5_000 + i);
        assert_eq!(s.post_ext(&id, &pad).await, 204);
        acked.insert(id);
    }
    // Room for one large object only, then group commits of large objects: an append that
    // runs out of space half-way has written part of its group, which must be cut off.
    let filler = disk.fs.path.join("filler");
    let fill = disk.fs.free().saturating_sub(24 * 1024) as usize;
    std::fs::write(&filler, vec![b'x'; fill]).unwrap();
    let big = "b".repeat(16 * 1024);
    let (more, failed, n) = fill_up(&s, &big).await;
    acked.extend(more);
    assert!(!failed.is_empty(), "the disk never filled ({n} writes)");
    std::fs::remove_file(&filler).unwrap();
    let after = "77777";
    assert_eq!(
        s.post_ext(after, "small").await,
        204,
        "a write after freeing space"
    );
    acked.insert(after.to_string());
    eprintln!(
        "full disk: {} acknowledged (one after recovery), {} answered 500",
        acked.len(),
        failed.len()
    );
    s.kill();
    // The failed groups were cut off the log as they failed: what is left is committed groups
    // only (at most an unfinished end), never damage, and none of the failed writes.
    let bytes = std::fs::read(disk.data.join("store.log")).unwrap();
    let scan = log::scan(&bytes).expect("a store log");
    eprintln!("log after SIGKILL: {} bytes, {:?}", bytes.len(), scan.tail);
    assert!(
        !matches!(scan.tail, log::Tail::Damaged { .. }),
        "{:?}",
        scan.tail
    );
    for r in &scan.records {
        if let log::Record::Put { id, .. } = r {
            assert!(!failed.contains(*id), "a failed write {id} is in the log");
        }
    }
    // Started, or refused: a refusal exits at once and says why on stderr.
    let mut child = process::spawn(
        process::bin()
            .args(["--serve-only", "--config"])
            .arg(&disk.config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    if child
        .wait_timeout(std::time::Duration::from_secs(3))
        .is_some()
    {
        let out = child.wait_with_output();
        panic!(
            "the store refused to start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(child);
    let s = Srv::start(&disk.config);
    let listed = census(&s).await;
    assert_eq!(
        ids_of(&listed),
        acked,
        "every acknowledged write, nothing else"
    );
    s.kill();
}
