//! Opening the store: a private data_dir, the lock, the integrity checks of
//! [`crate::integrity`], then every object loaded into memory. A stored object whose body is
//! not valid JSON is damage too (refused at start; `--repair` drops it after keeping a copy).

use super::{State, StoreError, SCHEMA};
use crate::integrity::{self, Damaged};
use crate::private_files;
use rusqlite::Connection;
use serde_json::Value;
use std::fs::File;
use std::path::Path;

pub(super) fn open(data_dir: &Path) -> Result<(Connection, State, File), StoreError> {
    private_files::create_dir(data_dir).map_err(|source| StoreError::CreateDir {
        path: data_dir.into(),
        source,
    })?;
    private_files::warn_if_open(data_dir, "[server] data_dir");
    let lock_path = data_dir.join("store.lock");
    let lock = lock_dir(data_dir, &lock_path)?;
    let db_path = data_dir.join("store.sqlite3");
    let db = integrity::Db {
        what: "the store",
        path: &db_path,
        marker: &lock_path,
        missing_is_damage: true,
    };
    let repair = integrity::repair_requested();
    db.check_files(repair)?;
    let sq = |source| StoreError::Sqlite {
        path: db_path.clone(),
        source,
    };
    private_files::prepare_db(&db_path).map_err(|source| StoreError::Lockfile {
        path: data_dir.into(),
        source,
    })?;
    let mut conn = Connection::open(&db_path).map_err(sq)?;
    // The store's lock file makes this process the file's only user: SQLite need not lock
    // it per transaction (fcntl: 5,924 calls in a first sync at 1,000 extensions, 10 after)
    // nor share its WAL index (no -shm file). Set before the first read, and again after a
    // repair, which opens the file anew.
    exclusive(&conn).map_err(sq)?;
    db.quick_check(&mut conn, repair)?;
    exclusive(&conn).map_err(sq)?;
    // WAL + synchronous=NORMAL: a commit has written the WAL (the OS holds it) before we
    // acknowledge, so it survives the process being killed; only an OS crash or power loss
    // can lose the last commits, and an fsync per commit would cap write throughput.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sq)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sq)?;
    conn.execute_batch(SCHEMA).map_err(sq)?;
    let state = load(&conn, &db, repair)?;
    if let Err(e) = db.mark() {
        tracing::warn!(file = %lock_path.display(), error = %e, "cannot write the store marker");
    }
    Ok((conn, state, lock))
}

fn exclusive(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
}

/// Every stored object into memory. Unreadable bodies: an error, or with `repair` dropped
/// from the database after a copy of it is kept.
fn load(conn: &Connection, db: &integrity::Db, repair: bool) -> Result<State, StoreError> {
    let sq = |source| StoreError::Sqlite {
        path: db.path.to_path_buf(),
        source,
    };
    let mut state = State::default();
    let mut bad = Vec::new();
    let mut stmt = conn
        .prepare("SELECT scope, id, seq, nkey, body FROM objects ORDER BY seq")
        .map_err(sq)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(sq)?;
    for row in rows {
        let (scope, id, seq, key, body) = row.map_err(sq)?;
        match serde_json::from_str::<Value>(&body) {
            Ok(v) => {
                state.put_raw(&scope, &id, seq.max(0) as u64, key, v);
            }
            Err(e) => bad.push((scope, id, e.to_string())),
        }
    }
    if bad.is_empty() {
        return Ok(state);
    }
    let (scope, id, e) = &bad[0];
    let problem = format!(
        "{} stored object(s) are not valid JSON (first: {scope}/{id}: {e})",
        bad.len()
    );
    if !repair {
        return Err(Damaged {
            what: db.what,
            path: db.path.to_path_buf(),
            problem: Box::new(problem.into()),
        }
        .into());
    }
    let kept = integrity::keep_copy(conn, db.path).map_err(sq)?;
    for (scope, id, _) in &bad {
        conn.execute(
            "DELETE FROM objects WHERE scope = ?1 AND id = ?2",
            [scope, id],
        )
        .map_err(sq)?;
    }
    tracing::warn!(
        file = %db.path.display(), kept = %kept.display(), %problem,
        "--repair: dropped the unreadable objects"
    );
    Ok(state)
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
