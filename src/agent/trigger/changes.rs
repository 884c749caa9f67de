//! Change detection: a cheap database fingerprint polled every `[freepbx] poll_interval`, and
//! inotify watches (via `notify`) on the files the sync reads and on the agent's own config.
//!
//! The database fingerprint has three levels, so that an idle PBX costs almost nothing and a
//! busy one (call records, queue logs: writes the sync never reads) little more:
//! 1. the *probe*: a handful of server-wide write counters (`SHOW GLOBAL STATUS`: handler
//!    writes/updates/deletes, InnoDB's log sequence number and DDL statement counts). Unchanged
//!    counters prove that nothing was written anywhere on the server, so nothing else is
//!    queried; reads do not move them.
//! 2. the *stamps*: when the probe saw a write, `information_schema.TABLES` gives each watched table's
//!    engine and last-modified second. A table is a *suspect* when its stamp changed, when the
//!    stamp is less than [`STAMP_WINDOW_SECS`] old (another write in a second already seen
//!    leaves it as it was), or when its engine keeps no reliable stamp (only InnoDB and MyISAM
//!    do). DDL counters, a reconnect or a server whose stamps are cached (MySQL 8) make every
//!    table a suspect.
//! 3. the *fingerprint*: `CHECKSUM TABLE` over the suspects only (a missing table checksums to
//!    NULL), and over the same tables once more on the next poll (a commit may bump the
//!    counters a moment before it becomes visible). A changed checksum is a trigger. This
//!    catches every change, whoever made it (GUI, Bulk Handler, REST/GraphQL API, plain SQL),
//!    unlike the `admin.need_reload` edge. The one write it can miss: a transaction whose write
//!    falls in the same second as one already seen and that commits more than
//!    [`STAMP_WINDOW_SECS`] seconds later; the periodic full verify sees that one.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The tables whose checksums make the fingerprint: exactly those the reader reads
/// ([`crate::freepbx::db::TABLES_READ`]). Tables that do not exist on a given system (module
/// not installed, older cx version) are harmless: they checksum to NULL, and their creation
/// is itself a change.
pub(crate) use crate::freepbx::db::TABLES_READ as WATCHED_TABLES;

/// The server-wide write counters the probe reads. `Handler_*` count row writes of every engine
/// (MariaDB counts temporary tables separately, as `Handler_tmp_*`, so our own queries do not
/// move them); InnoDB's log sequence number moves on every write and every commit of a write,
/// but not on reads. `Handler_commit` counts only where that number is missing: every SELECT on
/// an InnoDB table moves it, so on a PBX that is only read (the GUI, Asterisk realtime) the
/// probe would see a write on every poll.
const ROW_COUNTERS: &[&str] = &[
    "Handler_write",
    "Handler_update",
    "Handler_delete",
    "Innodb_lsn_current",
    // Only where the server has no `Innodb_lsn_current` (MySQL): see [`ChangeDetector::poll`].
    "Handler_commit",
];

/// Statements that bypass the row handlers or change tables wholesale (TRUNCATE, DDL): when
/// one of these moved, every table is a suspect.
const DDL_COUNTERS: &[&str] = &[
    "Com_truncate",
    "Com_create_table",
    "Com_drop_table",
    "Com_alter_table",
    "Com_rename_table",
    "Com_load",
    "Com_create_db",
    "Com_drop_db",
];

/// How long after its last-modified second a table stays a suspect. MariaDB stamps an InnoDB
/// table at commit, in whole seconds, with the second of the write: a second write within a
/// second already seen, committed up to this long after, is still caught.
pub(crate) const STAMP_WINDOW_SECS: i64 = 10;

/// The result of one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    /// First successful fingerprint: nothing to compare with yet.
    Baseline,
    /// Nothing the sync reads has changed.
    Unchanged,
    /// Something the sync reads has changed.
    Changed,
}

/// A row of [`ChangeDetector::stamps_sql`]: name, engine, created, updated, the server's now.
type StampRow = (String, String, Option<i64>, Option<i64>, i64);

/// One table's row in `information_schema.TABLES`: what changes when it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    engine: String,
    created: Option<i64>,
    updated: Option<i64>,
}

impl Stamp {
    /// Whether the stamp can prove the table unchanged: InnoDB (in memory, per write) and
    /// MyISAM (the data file's time) keep it; Aria, for one, does not update it on every write.
    fn trusted(&self) -> bool {
        self.engine.eq_ignore_ascii_case("InnoDB") || self.engine.eq_ignore_ascii_case("MyISAM")
    }
}

/// Counters of the detector's work (for tests, the benchmark and the metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DetectorCounts {
    /// Polls that ran the stamps query (the probe had seen a write).
    pub(crate) stamp_queries: u64,
    /// `CHECKSUM TABLE` statements run.
    pub(crate) checksums_run: u64,
    /// Tables checksummed, over all those statements.
    pub(crate) tables_checksummed: u64,
}

/// Polls the FreePBX database for changes to the rows the sync reads.
pub struct ChangeDetector {
    opts: Opts,
    conn: Option<Conn>,
    /// Whether `information_schema` stamps are live on this server (not MySQL's cached ones).
    stamps_live: bool,
    probe: Option<BTreeMap<String, String>>,
    stamps: BTreeMap<String, Stamp>,
    /// Query the stamps again on the next poll: a commit moves the log sequence number a
    /// moment before it stamps its tables.
    restamp: bool,
    /// Tables to checksum again on the next poll.
    recheck: BTreeSet<&'static str>,
    sums: Option<BTreeMap<&'static str, Option<u64>>>,
    /// [`STAMP_WINDOW_SECS`], unless a test shortens it.
    window: i64,
    /// What the detector has done so far.
    pub(crate) counts: DetectorCounts,
}

fn quoted_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|c| format!("'{c}'")).collect();
    q.join(",")
}

impl ChangeDetector {
    /// A detector on its own connection (opened lazily, reopened after errors).
    pub fn new(opts: Opts) -> ChangeDetector {
        ChangeDetector {
            opts,
            conn: None,
            stamps_live: false,
            probe: None,
            stamps: BTreeMap::new(),
            restamp: false,
            recheck: BTreeSet::new(),
            sums: None,
            window: STAMP_WINDOW_SECS,
            counts: DetectorCounts::default(),
        }
    }

    /// The same with another suspect window (seconds), for tests that cannot wait ten.
    #[cfg(test)]
    pub(crate) fn with_stamp_window(mut self, secs: i64) -> ChangeDetector {
        self.window = secs;
        self
    }

    /// The fingerprint query over every watched table, for documentation and the benchmark.
    pub fn checksum_sql(&self) -> String {
        checksum_sql(WATCHED_TABLES)
    }

    /// The probe's query.
    pub fn probe_sql() -> String {
        let all: Vec<&str> = ROW_COUNTERS.iter().chain(DDL_COUNTERS).copied().collect();
        format!(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ({})",
            quoted_list(&all)
        )
    }

    /// The stamps query (level 2), on the connection's default database.
    pub fn stamps_sql() -> String {
        format!(
            "SELECT TABLE_NAME, ENGINE, UNIX_TIMESTAMP(CREATE_TIME), UNIX_TIMESTAMP(UPDATE_TIME), \
             UNIX_TIMESTAMP(NOW()) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({})",
            quoted_list(WATCHED_TABLES)
        )
    }

    /// Poll once. On error the connection is dropped and the next poll reconnects and
    /// re-checksums every table, so a change made during an outage is reported when it ends.
    pub(crate) async fn poll(&mut self) -> Result<Poll, mysql_async::Error> {
        match self.poll_inner().await {
            Ok(p) => Ok(p),
            Err(e) => {
                // Best effort; the connection may already be gone.
                drop(self.conn.take());
                self.probe = None;
                Err(e)
            }
        }
    }

    async fn poll_inner(&mut self) -> Result<Poll, mysql_async::Error> {
        if self.conn.is_none() {
            let mut conn = Conn::new(self.opts.clone()).await?;
            let version: Option<String> = conn.query_first("SELECT VERSION()").await?;
            // MySQL 8 caches these columns for a day (information_schema_stats_expiry).
            self.stamps_live = version.is_some_and(|v| v.contains("MariaDB"));
            self.conn = Some(conn);
            self.probe = None;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Poll::Unchanged);
        };
        let probe = read_probe(conn).await?;
        let moved = self.probe.as_ref() != Some(&probe);
        if !moved && !self.restamp && self.recheck.is_empty() && self.sums.is_some() {
            return Ok(Poll::Unchanged);
        }
        let stamp = moved || self.restamp;
        self.restamp = moved;
        let everything = self.sums.is_none()
            || self.probe.as_ref().map_or(true, |old| {
                DDL_COUNTERS.iter().any(|c| old.get(*c) != probe.get(*c))
            });
        self.probe = Some(probe);
        let mut suspects: BTreeSet<&'static str> = BTreeSet::new();
        if stamp && !self.stamps_live {
            // Stamps that are not live prove nothing: do not ask for them.
            suspects = WATCHED_TABLES.iter().copied().collect();
        } else if stamp {
            let rows: Vec<StampRow> = conn.query(Self::stamps_sql()).await?;
            self.counts.stamp_queries += 1;
            let now = rows.first().map(|r| r.4);
            let stamps: BTreeMap<String, Stamp> = rows
                .into_iter()
                .map(|(name, engine, created, updated, _)| {
                    let stamp = Stamp {
                        engine,
                        created,
                        updated,
                    };
                    (name.to_ascii_lowercase(), stamp)
                })
                .collect();
            suspects = WATCHED_TABLES
                .iter()
                .copied()
                .filter(|t| everything || suspect(t, &self.stamps, &stamps, now, self.window))
                .collect();
            self.stamps = stamps;
        }
        let mut targets = suspects.clone();
        targets.extend(std::mem::take(&mut self.recheck));
        // Checksum again next time what the probe made a suspect this time.
        self.recheck = suspects;
        self.checksum(&targets).await
    }

    /// Checksum `tables` and compare with what they summed to before.
    async fn checksum(
        &mut self,
        tables: &BTreeSet<&'static str>,
    ) -> Result<Poll, mysql_async::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Poll::Unchanged);
        };
        if tables.is_empty() {
            return Ok(Poll::Unchanged);
        }
        let list: Vec<&'static str> = tables.iter().copied().collect();
        let rows: Vec<(String, Option<u64>)> = conn.query(checksum_sql(&list)).await?;
        self.counts.checksums_run += 1;
        self.counts.tables_checksummed += list.len() as u64;
        if rows.len() != list.len() {
            return Err(mysql_async::Error::Other(
                format!(
                    "CHECKSUM TABLE returned {} rows for {} tables",
                    rows.len(),
                    list.len()
                )
                .into(),
            ));
        }
        // Rows come in the order the tables were named.
        let new: Vec<(&'static str, Option<u64>)> = list
            .iter()
            .copied()
            .zip(rows.into_iter().map(|r| r.1))
            .collect();
        let Some(sums) = self.sums.as_mut() else {
            self.sums = Some(new.into_iter().collect());
            return Ok(Poll::Baseline);
        };
        let mut changed = false;
        for (t, sum) in new {
            changed |= sums.insert(t, sum) != Some(sum);
        }
        Ok(if changed {
            Poll::Changed
        } else {
            Poll::Unchanged
        })
    }

    /// Checksum every watched table on the next poll: the binary log stream broke, and what it
    /// did not deliver must be found now.
    pub fn suspect_all(&mut self) {
        self.recheck.extend(WATCHED_TABLES.iter().copied());
    }

    /// Close the connection politely.
    pub(crate) async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
    }
}

/// The probe's counters now.
pub(crate) async fn read_probe(
    conn: &mut Conn,
) -> Result<BTreeMap<String, String>, mysql_async::Error> {
    let mut probe: BTreeMap<String, String> = conn
        .query::<(String, String), _>(ChangeDetector::probe_sql())
        .await?
        .into_iter()
        .collect();
    if probe.contains_key("Innodb_lsn_current") {
        probe.remove("Handler_commit");
    }
    Ok(probe)
}

fn checksum_sql(tables: &[&str]) -> String {
    let quoted: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
    format!("CHECKSUM TABLE {}", quoted.join(", "))
}

/// Whether `table` may have changed since the last stamps (see the module doc, level 2).
fn suspect(
    table: &str,
    old: &BTreeMap<String, Stamp>,
    new: &BTreeMap<String, Stamp>,
    now: Option<i64>,
    window: i64,
) -> bool {
    let key = table.to_ascii_lowercase();
    let (before, after) = (old.get(&key), new.get(&key));
    match after {
        // Dropped, or still missing: a drop moves the DDL counters; checksum only on a change.
        None => before.is_some(),
        Some(s) if before != Some(s) || !s.trusted() => true,
        Some(s) => match (s.updated, now) {
            (Some(u), Some(now)) => now - u <= window,
            // InnoDB keeps no time for a table not written since it was opened.
            (None, _) => false,
            (Some(_), None) => true,
        },
    }
}

/// Watches files by watching their parent directories, so that editors and tools that replace
/// a file by renaming a new one over it are noticed too.
pub(crate) struct FileWatcher {
    _watcher: notify::RecommendedWatcher,
    /// The directories actually watched (missing ones are skipped); the tests check them.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) dirs: Vec<PathBuf>,
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
pub(crate) fn watch_files<F>(files: &[PathBuf], on_change: F) -> Result<FileWatcher, notify::Error>
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
pub(crate) fn next_poll_backoff(
    current: Option<Duration>,
    base: Duration,
    max: Duration,
) -> Duration {
    match current {
        None => base,
        Some(d) => (d * 2).min(max),
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;

/// The files whose change matters: FreePBX's config (credentials), voicemail.conf (e-mail
/// addresses), a snapshot file when one is the source, and our own config.
pub(crate) fn watched_files(
    cfg: &crate::config::Config,
    config_path: &std::path::Path,
) -> Vec<PathBuf> {
    let mut v = vec![
        cfg.freepbx.config_file.clone(),
        cfg.freepbx.amportal_conf.clone(),
        cfg.freepbx.voicemail_conf.clone(),
        config_path.to_path_buf(),
    ];
    if let Some(s) = &cfg.freepbx.snapshot {
        v.push(s.clone());
    }
    v.sort();
    v.dedup();
    v
}
