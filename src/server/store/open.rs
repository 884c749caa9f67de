//! Opening the store: a private data_dir, its lock, then the log replayed into memory.
//!
//! What the replay finds decides the start: an unfinished write at the end (a killed process)
//! is dropped with a warning; a damaged record followed by intact ones, a log that is not one,
//! a stored body that is not JSON, or a log that is missing or empty while the lock file
//! records that it held data, stop the start with a message naming the file and what to do
//! ([`crate::integrity::Damaged`]), unless `--repair` was given: then a copy of the log is
//! kept beside it as `store.log.damaged-<unix time>` and the store starts with what is
//! readable. A store of an earlier version (`store.sqlite3`) is carried over into the log once
//! and kept as `store.sqlite3.migrated-<unix time>`.

use super::log::{self, LogFile, Record, Scan, Tail};
use super::{legacy, State, StoreError};
use crate::integrity::{self, Damaged};
use crate::private_files;
use std::fs::File;
use std::path::Path;

/// The log's file name in data_dir.
pub(super) const LOG_FILE: &str = "store.log";
/// The SQLite store of earlier versions.
const SQLITE_FILE: &str = "store.sqlite3";

pub(super) fn open(data_dir: &Path) -> Result<(LogFile, State, File), StoreError> {
    private_files::create_dir(data_dir).map_err(|source| StoreError::CreateDir {
        path: data_dir.into(),
        source,
    })?;
    private_files::warn_if_open(data_dir, "[server] data_dir");
    let lock_path = data_dir.join("store.lock");
    let lock = lock_dir(data_dir, &lock_path)?;
    let log_path = data_dir.join(LOG_FILE);
    let db = integrity::Db {
        what: "the store",
        path: &log_path,
        marker: &lock_path,
        missing_is_damage: true,
    };
    let io = |source| StoreError::Io {
        path: log_path.clone(),
        source,
    };
    let sqlite = data_dir.join(SQLITE_FILE);
    let (state, keep_to) = if carry_over(&sqlite, &log_path) {
        (legacy::load_sqlite(&sqlite, &lock_path)?, None)
    } else {
        db.check_files(integrity::repair_requested())?;
        load(&log_path, &db)?
    };
    let log = match keep_to {
        Some(len) => LogFile::continue_at(&log_path, len),
        None => LogFile::rewrite(&log_path, super::Undoable::records(&state).into_iter()),
    }
    .map_err(io)?;
    if sqlite.exists() {
        retire_sqlite(&sqlite);
    }
    if let Err(e) = db.mark() {
        tracing::warn!(file = %lock_path.display(), error = %e, "cannot write the store marker");
    }
    Ok((log, state, lock))
}

/// Whether the SQLite store is to be carried over: there is no log yet, or the SQLite file
/// was written after the log (an earlier version ran again on this data_dir). A SQLite file
/// older than the log is what a start stopped between writing the log and renaming it left.
fn carry_over(sqlite: &Path, log: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // SQLite's latest writes may be in its WAL, which it had not copied back yet.
    let mut wal = sqlite.as_os_str().to_owned();
    wal.push("-wal");
    let written = modified(sqlite).max(modified(Path::new(&wal)).filter(|_| sqlite.exists()));
    match (written, modified(log)) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(s), Some(l)) => s > l,
    }
}

/// The log replayed, and the length to continue it at (None: rewrite it from memory, because
/// it is new, had an unfinished or repaired end, or has grown well past what it holds).
fn load(path: &Path, db: &integrity::Db) -> Result<(State, Option<u64>), StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // check_files has refused a missing log that held data: this one is new.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((State::default(), None)),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.into(),
                source,
            })
        }
    };
    if bytes.is_empty() {
        return Ok((State::default(), None));
    }
    let repair = integrity::repair_requested();
    let scan = match log::scan(&bytes) {
        Ok(scan) => scan,
        Err(not_a_log) if repair => {
            keep_damaged(path, db, &not_a_log.to_string())?;
            return Ok((State::default(), None));
        }
        Err(not_a_log) => return Err(damaged(db, not_a_log.to_string())),
    };
    let mut rewrite = false;
    match scan.tail {
        Tail::Clean => {}
        Tail::Unfinished { bytes } => {
            tracing::warn!(
                file = %path.display(), bytes,
                "the store log ends in an unfinished write (the process stopped while writing \
                 it, before it was acknowledged); dropped"
            );
            rewrite = true;
        }
        Tail::Damaged { at, intact } => {
            let problem = format!(
                "the record at byte {at} is damaged and {intact} intact record(s) follow it \
                 (replaying only up to it would lose acknowledged writes)"
            );
            if !repair {
                return Err(damaged(db, problem));
            }
            keep_damaged(path, db, &problem)?;
            rewrite = true;
        }
    }
    let (state, bad) = replay(&scan);
    if let Some(problem) = bad {
        if !repair {
            return Err(damaged(db, problem));
        }
        keep_damaged(path, db, &problem)?;
        rewrite = true;
    }
    let live: usize = super::Undoable::records(&state)
        .iter()
        .map(log::encoded_len)
        .sum();
    // Grown to more than twice what it holds (updates and deletes leave old records behind).
    rewrite |= scan.end > 2 * live + (1 << 20);
    Ok((state, (!rewrite).then_some(scan.end as u64)))
}

/// The committed records applied in order; objects whose body is not JSON are left out and
/// named in the problem returned.
fn replay(scan: &Scan) -> (State, Option<String>) {
    let mut state = State::default();
    let mut bad: Vec<String> = Vec::new();
    for rec in &scan.records {
        match *rec {
            Record::Put {
                seq,
                scope,
                id,
                key,
                body,
            } => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => state.put_loaded(scope, id, seq, key, body),
                Err(e) => {
                    state.remove(scope, id);
                    bad.push(format!("{scope}/{id}: {e}"));
                }
            },
            Record::Del { scope, id } => {
                state.remove(scope, id);
            }
            Record::DelPrefix(prefix) => {
                state.remove_prefix(prefix);
            }
            Record::Commit => {}
        }
    }
    let problem = bad.first().map(|first| {
        format!(
            "{} stored object(s) are not valid JSON (first: {first})",
            bad.len()
        )
    });
    (state, problem)
}

fn damaged(db: &integrity::Db, problem: String) -> StoreError {
    Damaged {
        what: db.what,
        path: db.path.to_path_buf(),
        problem: Box::new(problem.into()),
    }
    .into()
}

/// `--repair`: keep a copy of the damaged log (0600) before the store starts without what
/// could not be read.
fn keep_damaged(path: &Path, db: &integrity::Db, problem: &str) -> Result<(), StoreError> {
    let aside = integrity::aside_name(path);
    std::fs::copy(path, &aside)
        .and_then(|_| private_files::tighten(&aside))
        .map_err(|source| StoreError::Io {
            path: aside.clone(),
            source,
        })?;
    tracing::warn!(
        file = %path.display(), kept = %aside.display(), %problem,
        "--repair: {} was damaged; keeping what is readable", db.what
    );
    Ok(())
}

/// The SQLite store, now carried over into the log, renamed so that it is not read again
/// (and kept: an administrator going back to an earlier version can rename it back).
fn retire_sqlite(sqlite: &Path) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut to = sqlite.as_os_str().to_owned();
    to.push(format!(".migrated-{secs}"));
    match std::fs::rename(sqlite, &to) {
        Ok(()) => tracing::info!(
            from = %sqlite.display(), kept = %Path::new(&to).display(),
            "the store was carried over into store.log; the SQLite file is kept"
        ),
        Err(e) => tracing::warn!(
            file = %sqlite.display(), error = %e,
            "cannot rename the carried-over SQLite store; store.log is used from now on"
        ),
    }
}

fn lock_dir(data_dir: &Path, lock_path: &Path) -> Result<File, StoreError> {
    use std::os::unix::io::AsRawFd;
    let file = private_files::open(
        lock_path,
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
    )
    .map_err(|source| StoreError::Lockfile {
        path: data_dir.into(),
        source,
    })?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return Err(StoreError::Locked {
                path: data_dir.into(),
                lock: lock_path.into(),
            });
        }
        return Err(StoreError::Lockfile {
            path: data_dir.into(),
            source: err,
        });
    }
    Ok(file)
}
