//! The store of versions before the log (`store.sqlite3`, one SQLite table of objects), read
//! once to carry it over into the log: with the integrity checks of [`crate::integrity`]
//! (`--repair` as before), every object loaded into memory. A stored object whose body is not
//! valid JSON is damage too (refused; `--repair` drops it after keeping a copy).

use super::{State, StoreError};
use crate::integrity::{self, Damaged};
use rusqlite::Connection;
use serde_json::Value;
use std::path::Path;

/// The table of the SQLite store.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS objects (
    scope TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, nkey TEXT, body TEXT NOT NULL,
    PRIMARY KEY (scope, id))";

/// Load the SQLite store at `db_path` (the caller holds the data_dir's lock, `marker`).
pub(super) fn load_sqlite(db_path: &Path, marker: &Path) -> Result<State, StoreError> {
    let db = integrity::Db {
        what: "the store",
        path: db_path,
        marker,
        missing_is_damage: true,
    };
    let repair = integrity::repair_requested();
    db.check_files(repair)?;
    let sq = |source| StoreError::Sqlite {
        path: db_path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(db_path).map_err(sq)?;
    exclusive(&conn).map_err(sq)?;
    db.quick_check(&mut conn, repair)?;
    exclusive(&conn).map_err(sq)?;
    conn.execute_batch(SCHEMA).map_err(sq)?;
    load(&conn, &db, repair)
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
