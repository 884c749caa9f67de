//! Damage to the agent's SQLite files is noticed at start (issue 11 point 5): the agent's own
//! state, and the endpoint's store of earlier versions before it is carried over into its log
//! (the log's own checks are in `server::store::open`; it shares the marker and the
//! `--repair` flag of this module).
//!
//! - Before the database is opened: a 0-byte (or, for the store, missing) file that a marker
//!   records as having held data is an error, since SQLite would open it as a new, empty
//!   database. The WAL is read frame by frame with SQLite's own checksums: SQLite replays the
//!   frames up to the first bad one and silently ignores the rest, so a bad frame followed by
//!   more frames of the same WAL generation means committed writes would vanish. A bad last
//!   frame alone is an unfinished write of a killed process and is not an error. A clean
//!   shutdown checkpoints, so the WAL is empty at the next start.
//! - After it is opened: `PRAGMA quick_check` (which reads the pages the WAL holds too).
//!
//! A damaged file stops the start with a message naming the file and what to do, unless
//! `--repair` was given: then the damaged files are kept beside the database as
//! `<name>.damaged-<unix time>` and what is readable is copied into a fresh database.

use rusqlite::{types::Value as SqlValue, Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub mod wal;

static REPAIR: AtomicBool = AtomicBool::new(false);

/// `--repair`: keep what is readable of a damaged store or state instead of refusing to start.
pub fn set_repair(on: bool) {
    REPAIR.store(on, Ordering::Relaxed);
}

pub fn repair_requested() -> bool {
    REPAIR.load(Ordering::Relaxed)
}

/// Why a database cannot be used as it is; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} {path} is damaged: {problem}. Restore it (with its -wal file, if any) from a \
     backup, or start once with --repair to keep what is readable (the damaged files are kept \
     beside it as {name}.damaged-<time>)",
    path = path.display(),
    name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
)]
pub struct Damaged {
    pub what: &'static str,
    pub path: PathBuf,
    pub problem: Box<Problem>,
}

/// What is wrong with a database file, or why repairing it failed.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Found by the agent's own checks (an empty or missing file, `PRAGMA quick_check` rows).
    #[error("{0}")]
    Found(String),
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    #[error("SQLite cannot read it ({0})")]
    Unreadable(#[source] rusqlite::Error),
    #[error("cannot open the damaged copy {}: {source}", path.display())]
    OpenCopy {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl From<String> for Problem {
    fn from(text: String) -> Problem {
        Problem::Found(text)
    }
}

/// One database file the agent owns.
pub struct Db<'a> {
    /// "the store" or "the agent state", for messages.
    pub what: &'static str,
    pub path: &'a Path,
    /// A file whose content records that the database held data.
    pub marker: &'a Path,
    /// Whether a missing database (with the marker saying it existed) is damage. The agent
    /// state may be deleted on purpose (it only saves work); the store may not.
    pub missing_is_damage: bool,
}

const MARK: &str = "holds data";

impl Db<'_> {
    fn damaged(&self, problem: impl Into<Problem>) -> Damaged {
        Damaged {
            what: self.what,
            path: self.path.to_path_buf(),
            problem: Box::new(problem.into()),
        }
    }

    /// Record that the database exists and holds data (checked at the next start).
    pub fn mark(&self) -> std::io::Result<()> {
        use std::io::Write;
        if std::fs::read_to_string(self.marker).is_ok_and(|s| s.contains(MARK)) {
            return Ok(());
        }
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let mut f = crate::private_files::open(
            self.marker,
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false),
        )?;
        f.set_len(0)?;
        writeln!(
            f,
            "isymphony-sync: {name} {MARK}; if it is missing or empty, it was lost (see README)."
        )?;
        f.sync_all()
    }

    fn marked(&self) -> bool {
        std::fs::read_to_string(self.marker).is_ok_and(|s| s.contains(MARK))
    }

    /// The checks before opening. With `repair`, damaged files are set aside (the database
    /// then starts from what SQLite can still read, or empty).
    pub fn check_files(&self, repair: bool) -> Result<(), Damaged> {
        let problem = match std::fs::metadata(self.path) {
            Ok(m) if m.len() == 0 && self.marked() => Some(Problem::Found(format!(
                "it is empty (0 bytes), but {} records that it held data",
                self.marker.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.missing_is_damage && self.marked() {
                    Some(Problem::Found(format!(
                        "it is missing, but {} records that it held data",
                        self.marker.display()
                    )))
                } else {
                    None
                }
            }
            _ => wal::check(&wal_path(self.path)).err().map(Problem::from),
        };
        let Some(problem) = problem else {
            return Ok(());
        };
        if !repair {
            return Err(self.damaged(problem));
        }
        let aside = set_aside(self.path).map_err(|e| self.damaged(e))?;
        tracing::warn!(
            file = %self.path.display(), kept = %aside.display(), %problem,
            "--repair: {} was damaged; keeping what is readable", self.what
        );
        // A damaged WAL: open the set-aside copy (SQLite replays the good frames) and copy it.
        if aside.metadata().is_ok_and(|m| m.len() > 0) {
            copy_readable(&aside, self.path).map_err(|e| self.damaged(e))?;
        }
        Ok(())
    }

    /// The check after opening. With `repair`, a failing database is rebuilt from what can
    /// be read of it and `conn` is reopened on the new file.
    pub fn quick_check(&self, conn: &mut Connection, repair: bool) -> Result<(), Damaged> {
        let problem = match quick_check(conn) {
            Ok(()) => return Ok(()),
            Err(p) => p,
        };
        if !repair {
            return Err(self.damaged(problem));
        }
        let fresh = Connection::open_in_memory().map_err(|e| self.damaged(e))?;
        drop(std::mem::replace(conn, fresh));
        let aside = set_aside(self.path).map_err(|e| self.damaged(e))?;
        tracing::warn!(
            file = %self.path.display(), kept = %aside.display(), %problem,
            "--repair: {} failed its integrity check; copying what is readable", self.what
        );
        copy_readable(&aside, self.path).map_err(|e| self.damaged(e))?;
        *conn = Connection::open(self.path).map_err(|e| self.damaged(e))?;
        Ok(())
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// `PRAGMA quick_check`: Ok, or the first problems it names.
fn quick_check(conn: &Connection) -> Result<(), Problem> {
    let rows: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(Problem::Unreadable)?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        let text = rows.join("; ").replace(['\n', '\r'], " ");
        Err(Problem::Found(format!("PRAGMA quick_check found: {text}")))
    }
}

/// Move the database and its WAL to `<name>.damaged-<unix time>` (and `…-wal`), so SQLite
/// reads them together again; drop the -shm index, which SQLite rebuilds.
fn set_aside(db: &Path) -> std::io::Result<PathBuf> {
    let aside = aside_name(db);
    if db.exists() {
        std::fs::rename(db, &aside)?;
    }
    let wal = wal_path(db);
    if wal.exists() {
        std::fs::rename(&wal, wal_path(&aside))?;
    }
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let _ = std::fs::remove_file(PathBuf::from(shm));
    Ok(aside)
}

/// Keep a copy of an open database as `<name>.damaged-<unix time>` (0600) before `--repair`
/// changes it in place.
pub fn keep_copy(conn: &Connection, db: &Path) -> rusqlite::Result<PathBuf> {
    let aside = aside_name(db);
    conn.execute("VACUUM INTO ?1", [aside.to_string_lossy()])?;
    if let Err(e) = crate::private_files::tighten(&aside) {
        tracing::warn!(file = %aside.display(), error = %e, "cannot make the copy private");
    }
    Ok(aside)
}

/// `<name>.damaged-<unix time>` beside `db`: where a damaged file's copy is kept.
pub fn aside_name(db: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut aside = db.as_os_str().to_owned();
    aside.push(format!(".damaged-{secs}"));
    PathBuf::from(aside)
}

/// Copy every row SQLite can still read of every table of `from` into a new database `to`.
fn copy_readable(from: &Path, to: &Path) -> Result<(), Problem> {
    // Read-only: the kept copy (and its WAL) must stay as it was found.
    let src =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            Problem::OpenCopy {
                path: from.to_path_buf(),
                source,
            }
        })?;
    crate::private_files::prepare_db(to)?;
    let dst = Connection::open(to)?;
    let tables: Vec<(String, String)> = src
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .unwrap_or_default();
    let (mut copied, mut lost) = (0u64, 0u64);
    for (name, sql) in tables {
        if dst.execute_batch(&sql).is_err() {
            continue;
        }
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let Ok(mut st) = src.prepare(&format!("SELECT * FROM {quoted}")) else {
            lost += 1;
            continue;
        };
        let n = st.column_count();
        let marks = vec!["?"; n].join(",");
        let insert = format!("INSERT OR IGNORE INTO {quoted} VALUES ({marks})");
        let Ok(mut rows) = st.query([]) else {
            lost += 1;
            continue;
        };
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    let vals: Vec<SqlValue> = (0..n)
                        .map(|i| row.get(i).unwrap_or(SqlValue::Null))
                        .collect();
                    if dst
                        .execute(&insert, rusqlite::params_from_iter(vals))
                        .is_ok()
                    {
                        copied += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    tracing::warn!(
        copied, unreadable_tables = lost, to = %to.display(),
        "--repair: copied the readable rows into a fresh database"
    );
    Ok(())
}
