//! Change detection: a cheap database fingerprint polled every `[freepbx] poll_interval`, and
//! inotify watches (via `notify`) on the files the sync reads and on the agent's own config.
//!
//! The database fingerprint has two levels, so that an idle PBX costs almost nothing:
//! 1. the *gate*: a handful of server-wide write counters (`SHOW GLOBAL STATUS`: handler
//!    writes/updates/deletes/commits and DDL statement counts). Unchanged counters prove that
//!    nothing was written anywhere on the server, so nothing else is queried.
//! 2. the *fingerprint*: `CHECKSUM TABLE` over every table the sync reads ([`WATCHED_TABLES`];
//!    a missing table checksums to NULL). It runs only when the gate moved, plus once more on
//!    the next poll (a commit may bump the counters a moment before it becomes visible). A
//!    changed checksum is a trigger. This catches every change, whoever made it (GUI, Bulk
//!    Handler, REST/GraphQL API, plain SQL), unlike the `admin.need_reload` edge.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tables whose checksums make the fingerprint: exactly those the reader reads
/// ([`crate::freepbx::db::TABLES_READ`]). Tables that do not exist on a given system (module
/// not installed, older cx version) are harmless: they checksum to NULL, and their creation
/// is itself a change.
pub use crate::freepbx::db::TABLES_READ as WATCHED_TABLES;

/// The server-wide counters of the gate. `Handler_*` count row operations of every engine
/// (MariaDB counts temporary tables separately, as `Handler_tmp_*`, so our own queries do not
/// move them); `Com_*` cover statements that bypass the row handlers (TRUNCATE, DDL).
const GATE_COUNTERS: &[&str] = &[
    "Handler_write",
    "Handler_update",
    "Handler_delete",
    "Handler_commit",
    "Com_truncate",
    "Com_create_table",
    "Com_drop_table",
    "Com_alter_table",
    "Com_rename_table",
    "Com_load",
    "Com_create_db",
    "Com_drop_db",
];

/// The result of one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// First successful fingerprint: nothing to compare with yet.
    Baseline,
    /// Nothing the sync reads has changed.
    Unchanged,
    /// Something the sync reads has changed.
    Changed,
}

/// Polls the FreePBX database for changes to the rows the sync reads.
pub struct ChangeDetector {
    opts: Opts,
    conn: Option<Conn>,
    gate: Option<Vec<(String, String)>>,
    recheck: bool,
    sums: Option<Vec<(String, Option<u64>)>>,
    checksum_sql: String,
    /// How many times the fingerprint query ran (for tests and the benchmark).
    pub checksums_run: u64,
}

impl ChangeDetector {
    /// A detector on its own connection (opened lazily, reopened after errors).
    pub fn new(opts: Opts) -> ChangeDetector {
        let tables: Vec<String> = WATCHED_TABLES.iter().map(|t| format!("`{t}`")).collect();
        ChangeDetector {
            opts,
            conn: None,
            gate: None,
            recheck: false,
            sums: None,
            checksum_sql: format!("CHECKSUM TABLE {}", tables.join(", ")),
            checksums_run: 0,
        }
    }

    /// The fingerprint query, for documentation and the benchmark.
    pub fn checksum_sql(&self) -> &str {
        &self.checksum_sql
    }

    /// The gate query.
    pub fn gate_sql() -> String {
        let names: Vec<String> = GATE_COUNTERS.iter().map(|c| format!("'{c}'")).collect();
        format!(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ({})",
            names.join(",")
        )
    }

    /// Poll once. On error the connection is dropped and the next poll reconnects and
    /// re-checksums, so a change made during an outage is reported when it ends.
    pub async fn poll(&mut self) -> Result<Poll, mysql_async::Error> {
        match self.poll_inner().await {
            Ok(p) => Ok(p),
            Err(e) => {
                if let Some(conn) = self.conn.take() {
                    // Best effort; the connection may already be gone.
                    drop(conn);
                }
                self.gate = None;
                Err(e)
            }
        }
    }

    async fn poll_inner(&mut self) -> Result<Poll, mysql_async::Error> {
        if self.conn.is_none() {
            self.conn = Some(Conn::new(self.opts.clone()).await?);
            self.gate = None;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Poll::Unchanged);
        };
        let mut gate: Vec<(String, String)> = conn.query(Self::gate_sql()).await?;
        gate.sort();
        let moved = self.gate.as_ref() != Some(&gate);
        if !moved && !self.recheck && self.sums.is_some() {
            return Ok(Poll::Unchanged);
        }
        self.recheck = moved;
        self.gate = Some(gate);
        let mut sums: Vec<(String, Option<u64>)> = conn.query(self.checksum_sql.as_str()).await?;
        self.checksums_run += 1;
        sums.sort();
        let result = match &self.sums {
            None => Poll::Baseline,
            Some(old) if *old == sums => Poll::Unchanged,
            Some(_) => Poll::Changed,
        };
        self.sums = Some(sums);
        Ok(result)
    }

    /// Close the connection politely.
    pub async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
    }
}

/// Watches files by watching their parent directories, so that editors and tools that replace
/// a file by renaming a new one over it are noticed too.
pub struct FileWatcher {
    _watcher: notify::RecommendedWatcher,
    /// The directories actually watched (missing ones are skipped).
    pub dirs: Vec<PathBuf>,
}

/// Make a path absolute without resolving symlinks (events name the path as watched).
fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Watch `files`; `on_change` gets the watched path (as given) whenever it is created,
/// written, renamed or removed. Files whose directory does not exist are skipped with a
/// warning (they cannot appear without the directory being created, which is out of scope).
pub fn watch_files<F>(files: &[PathBuf], on_change: F) -> Result<FileWatcher, notify::Error>
where
    F: Fn(&Path) + Send + 'static,
{
    let targets: Vec<(PathBuf, PathBuf)> = files.iter().map(|f| (absolute(f), f.clone())).collect();
    let match_targets = targets.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let mut hit: BTreeSet<&PathBuf> = BTreeSet::new();
        for p in &event.paths {
            for (abs, given) in &match_targets {
                if p == abs {
                    hit.insert(given);
                }
            }
        }
        for given in hit {
            on_change(given);
        }
    })?;
    let dirs: BTreeSet<PathBuf> = targets
        .iter()
        .filter_map(|(abs, _)| abs.parent().map(Path::to_path_buf))
        .collect();
    let mut watched = Vec::new();
    for dir in dirs {
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => watched.push(dir),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; changes to files in it are seen only by the periodic verify");
            }
        }
    }
    Ok(FileWatcher {
        _watcher: watcher,
        dirs: watched,
    })
}

/// How long to wait between polls after an error (grows to `max`).
pub fn next_poll_backoff(current: Option<Duration>, base: Duration, max: Duration) -> Duration {
    match current {
        None => base,
        Some(d) => (d * 2).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testdb::TestDb;
    use std::sync::mpsc;

    #[tokio::test]
    async fn checksum_catches_every_change_to_watched_tables() {
        let db = TestDb::new("watch").await;
        db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50))")
            .await;
        db.exec("CREATE TABLE unrelated (x INT)").await;
        db.exec("INSERT INTO users VALUES ('1001','Alice')").await;
        let mut d = ChangeDetector::new(db.opts());
        assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
        assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
        assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);

        db.exec("UPDATE users SET name='Alicia' WHERE extension='1001'")
            .await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed);
        assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);

        // Writes elsewhere move the gate but not the fingerprint.
        db.exec("INSERT INTO unrelated VALUES (1)").await;
        assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);

        // A multi-statement transaction is seen once committed.
        db.exec(
            "START TRANSACTION; DELETE FROM users; INSERT INTO users VALUES ('1002','Bob'); COMMIT",
        )
        .await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed);

        // A module installed later: its table appearing is a change.
        db.exec("CREATE TABLE meetme (exten VARCHAR(50) PRIMARY KEY, description VARCHAR(50))")
            .await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed);
        db.exec("INSERT INTO meetme VALUES ('9001','Room')").await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed);
        db.exec("TRUNCATE TABLE meetme").await;
        assert_eq!(d.poll().await.unwrap(), Poll::Changed);
        assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
        d.close().await;
    }

    #[tokio::test]
    async fn idle_polls_skip_the_checksum_when_the_server_is_quiet() {
        let db = TestDb::new("watchidle").await;
        db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50))")
            .await;
        let mut d = ChangeDetector::new(db.opts());
        d.poll().await.unwrap();
        // Other tests write concurrently on the same server, so the gate may move; what must
        // hold is that a quiet poll never reports a change and that polling works repeatedly.
        for _ in 0..20 {
            assert_eq!(d.poll().await.unwrap(), Poll::Unchanged);
        }
        assert!(d.checksums_run >= 1);
        d.close().await;
    }

    #[tokio::test]
    async fn unreachable_database_is_an_error_then_recovers() {
        let db = TestDb::new("watchdown").await;
        db.exec("CREATE TABLE users (extension VARCHAR(20), name VARCHAR(50))")
            .await;
        let bad = mysql_async::OptsBuilder::from_opts(db.opts()).tcp_port(1);
        let mut d = ChangeDetector::new(bad.into());
        assert!(d.poll().await.is_err());
        let mut d = ChangeDetector::new(db.opts());
        assert_eq!(d.poll().await.unwrap(), Poll::Baseline);
        d.close().await;
    }

    fn expect_event(rx: &mpsc::Receiver<PathBuf>, want: &Path) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let got = rx.recv_timeout(left).expect("no file event");
            if got == want {
                break;
            }
        }
        // Drain the burst of events one write produces.
        while rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
    }

    #[test]
    fn file_watch_sees_writes_renames_and_recreation() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("voicemail.conf");
        let other = dir.path().join("other.conf");
        std::fs::write(&conf, "[default]\n").unwrap();
        let (tx, rx) = mpsc::channel();
        let w = watch_files(std::slice::from_ref(&conf), move |p| {
            let _ = tx.send(p.to_path_buf());
        })
        .unwrap();
        assert_eq!(w.dirs, vec![dir.path().to_path_buf()]);

        std::fs::write(&conf, "[default]\n1001 => 1234,Alice,a@example.com\n").unwrap();
        expect_event(&rx, &conf);

        // Editors that write a new file and rename it over the old one.
        let tmp = dir.path().join(".voicemail.conf.swp");
        std::fs::write(&tmp, "[default]\n1001 => 1234,Alice,b@example.com\n").unwrap();
        std::fs::rename(&tmp, &conf).unwrap();
        expect_event(&rx, &conf);

        std::fs::remove_file(&conf).unwrap();
        expect_event(&rx, &conf);
        std::fs::write(&conf, "[default]\n").unwrap();
        expect_event(&rx, &conf);

        // Other files in the same directory are ignored.
        std::fs::write(&other, "x").unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    }

    #[test]
    fn missing_directories_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let w = watch_files(&[dir.path().join("nope/freepbx.conf")], |_| {}).unwrap();
        assert!(w.dirs.is_empty());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(200);
        let m = Duration::from_secs(1);
        assert_eq!(next_poll_backoff(None, b, m), b);
        assert_eq!(next_poll_backoff(Some(b), b, m), b * 2);
        assert_eq!(next_poll_backoff(Some(m), b, m), m);
    }
}
