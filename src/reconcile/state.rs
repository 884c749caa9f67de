//! The agent's own memory (SQLite, `agent-state.sqlite` in `[sync] state_dir` or
//! `[server] data_dir`): objects it adopted, a hash of each password hash it pushed (never the
//! value), the e-mail addresses and phone numbers it added, a fingerprint of each
//! sub-resource's desired state as last applied and verified, and the changes iSymphony
//! refused for licensing (so they are not retried every pass), and the last pass that wrote
//! each object ([`writes`]).
//!
//! Nothing here is needed for correctness: losing the file costs one slower pass (every
//! sub-resource is re-read) and possibly one password push. Rows are scoped by target
//! (`slug@url`), so pointing the agent at another server never reuses stale fingerprints.
//! Records change only after the server confirmed a write, or after a read verified the fact.

use super::facts::{Effect, Known, Refusal};
use crate::model::Kind;
use crate::{integrity, private_files};
use rusqlite::{params, Connection, OpenFlags};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[cfg(test)]
mod kept_tests;
mod scope_move;
pub mod writes;

/// The table of the last write to each object ([`writes`]), run with the schema at open.
const WRITES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS writes (scope TEXT NOT NULL, kind TEXT NOT NULL,
  natural_key TEXT NOT NULL, part TEXT NOT NULL, action TEXT NOT NULL,
  written_ms INTEGER NOT NULL, pass_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, kind, natural_key));
";

pub const STATE_FILE: &str = "agent-state.sqlite";
/// Records that the state file exists, so a 0-byte one is noticed ([`crate::integrity`]).
pub const STATE_MARKER: &str = "agent-state.marker";

/// State files already checked by this process (a pass opens the file; checking it once at
/// start is enough).
static CHECKED: std::sync::Mutex<BTreeSet<PathBuf>> = std::sync::Mutex::new(BTreeSet::new());

#[derive(Debug, thiserror::Error)]
#[error("{}", if message.starts_with("the agent state ") {
    message.clone()
} else {
    format!("agent state {}: {message}", path.display())
})]
pub struct StateError {
    pub path: PathBuf,
    pub message: String,
}

/// The connection a daemon pass left open, by file path and identity (device, inode).
static KEPT: crate::kept::Slot<(PathBuf, (u64, u64)), Kept> = crate::kept::Slot::new();

/// A kept connection and what it last loaded.
struct Kept {
    conn: Connection,
    known: Option<LoadedKnown>,
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

pub struct StateStore {
    conn: Connection,
    scope: String,
    path: PathBuf,
    /// Kept between passes (the daemon): what [`StateStore::load`] read, kept up to date by
    /// this store's own writes, so that the next pass reads it from memory unless another
    /// connection wrote the file meanwhile.
    known: Option<LoadedKnown>,
    keeping: bool,
}

/// What was loaded for a scope, and SQLite's `data_version` then (it changes only when
/// another connection commits).
struct LoadedKnown {
    scope: String,
    version: i64,
    known: Known,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS adopted (scope TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
  natural_key TEXT NOT NULL, PRIMARY KEY (scope, kind, id));
CREATE TABLE IF NOT EXISTS passwords (scope TEXT NOT NULL, kind TEXT NOT NULL,
  natural_key TEXT NOT NULL, hh TEXT NOT NULL, PRIMARY KEY (scope, kind, natural_key));
CREATE TABLE IF NOT EXISTS added (scope TEXT NOT NULL, kind TEXT NOT NULL, owner TEXT NOT NULL,
  value TEXT NOT NULL, PRIMARY KEY (scope, kind, owner, value));
CREATE TABLE IF NOT EXISTS fingerprints (scope TEXT NOT NULL, fkey TEXT NOT NULL,
  fp TEXT NOT NULL, PRIMARY KEY (scope, fkey));
CREATE TABLE IF NOT EXISTS refusals (scope TEXT NOT NULL, kind TEXT NOT NULL,
  natural_key TEXT NOT NULL, action TEXT NOT NULL, fp TEXT NOT NULL, message TEXT NOT NULL,
  PRIMARY KEY (scope, kind, natural_key, action));
";

impl StateStore {
    /// The damage message already names the file; keep it as it is.
    fn damaged(path: &Path, e: integrity::Damaged) -> StateError {
        StateError {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn err(path: &Path, e: impl std::fmt::Display) -> StateError {
        StateError {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn db<'a>(path: &'a Path, marker: &'a Path) -> integrity::Db<'a> {
        integrity::Db {
            what: "the agent state",
            path,
            marker,
            // Deleting the state is allowed (it only saves work); emptying it is not expected.
            missing_is_damage: false,
        }
    }

    /// Open (creating the directory and file, both private) for a pass that writes. The
    /// first open in a process checks the file for damage (`--repair` keeps what is readable).
    pub fn open(dir: &Path, scope: &str) -> Result<StateStore, StateError> {
        let path = dir.join(STATE_FILE);
        let marker = dir.join(STATE_MARKER);
        private_files::create_dir(dir).map_err(|e| Self::err(dir, e))?;
        let db = Self::db(&path, &marker);
        let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
        let first = !checked.contains(&path);
        let repair = integrity::repair_requested();
        if first {
            private_files::warn_if_open(dir, "the agent state directory");
            db.check_files(repair)
                .map_err(|e| Self::damaged(&path, e))?;
        }
        private_files::prepare_db(&path).map_err(|e| Self::err(&path, e))?;
        let mut conn = Connection::open(&path).map_err(|e| Self::err(&path, e))?;
        if first {
            db.quick_check(&mut conn, repair)
                .map_err(|e| Self::damaged(&path, e))?;
            checked.insert(path.clone());
        }
        drop(checked);
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| Self::err(&path, e))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(|e| Self::err(&path, e))?;
        conn.execute_batch(SCHEMA)
            .and_then(|()| conn.execute_batch(WRITES_SCHEMA))
            .map_err(|e| Self::err(&path, e))?;
        if let Err(e) = db.mark() {
            tracing::warn!(file = %marker.display(), error = %e, "cannot write the state marker");
        }
        Ok(StateStore {
            conn,
            scope: scope.to_string(),
            path,
            known: None,
            keeping: false,
        })
    }

    /// [`StateStore::open`]; with `keep`, the connection a daemon pass left (see
    /// [`StateStore::keep`]) when it is still open on the same file.
    pub fn open_keeping(dir: &Path, scope: &str, keep: bool) -> Result<StateStore, StateError> {
        let path = dir.join(STATE_FILE);
        let kept = match (keep, file_id(&path)) {
            (true, Some(id)) => KEPT.take(&(path.clone(), id)),
            _ => None,
        };
        let mut store = match kept {
            Some(k) => StateStore {
                conn: k.conn,
                scope: scope.to_string(),
                path,
                known: k.known,
                keeping: false,
            },
            None => Self::open(dir, scope)?,
        };
        store.keeping = keep;
        Ok(store)
    }

    /// Keep the connection (and SQLite's cache of the file's pages, and what was loaded) for
    /// the next pass. A file deleted or replaced meanwhile has another identity: the next pass
    /// opens it afresh.
    pub fn keep(self) {
        if let Some(id) = file_id(&self.path) {
            let kept = Kept {
                conn: self.conn,
                known: self.known,
            };
            KEPT.put((self.path, id), kept);
        }
    }

    /// Close the connection a pass kept.
    pub fn release_kept() {
        KEPT.clear();
    }

    /// SQLite's count of commits by other connections (see [`LoadedKnown`]).
    fn data_version(&self) -> Result<i64, StateError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|x| Self::err(&self.path, x))
    }

    /// What is known for this store's scope: from memory when this connection loaded it and
    /// no other connection wrote since (a kept store), else from the file.
    pub fn load(&mut self) -> Result<Known, StateError> {
        if !self.keeping {
            return self.load_from_file();
        }
        let version = self.data_version()?;
        if let Some(l) = &self.known {
            if l.scope == self.scope && l.version == version {
                return Ok(l.known.clone());
            }
        }
        self.known = None;
        let known = self.load_from_file()?;
        self.known = Some(LoadedKnown {
            scope: self.scope.clone(),
            version,
            known: known.clone(),
        });
        Ok(known)
    }

    /// Apply a write that succeeded to what is kept in memory; a failed one forgets it (the
    /// next load reads the file).
    fn mirror(&mut self, ok: bool, apply: impl FnOnce(&mut Known)) {
        match (&mut self.known, ok) {
            (Some(l), true) if l.scope == self.scope => apply(&mut l.known),
            _ => self.known = None,
        }
    }

    /// Read what is known without creating anything (dry runs change nothing anywhere).
    pub fn load_read_only(dir: &Path, scope: &str) -> Result<Known, StateError> {
        let path = dir.join(STATE_FILE);
        let marker = dir.join(STATE_MARKER);
        let db = Self::db(&path, &marker);
        // Checked, never repaired: a dry run changes nothing.
        db.check_files(false).map_err(|e| Self::damaged(&path, e))?;
        if !path.exists() {
            return Ok(Known::default());
        }
        let mut conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Self::err(&path, e))?;
        db.quick_check(&mut conn, false)
            .map_err(|e| Self::damaged(&path, e))?;
        let s = StateStore {
            conn,
            scope: scope.to_string(),
            path,
            known: None,
            keeping: false,
        };
        match s.load_from_file() {
            Ok(k) => Ok(k),
            // A file from before the schema existed: nothing known yet.
            Err(e) if e.message.contains("no such table") => Ok(Known::default()),
            Err(e) => Err(e),
        }
    }

    fn load_from_file(&self) -> Result<Known, StateError> {
        let e = |x: rusqlite::Error| Self::err(&self.path, x);
        let mut k = Known::default();
        let mut st = self
            .conn
            .prepare("SELECT kind, id FROM adopted WHERE scope = ?1")
            .map_err(e)?;
        let rows = st
            .query_map(params![self.scope], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(e)?;
        for r in rows {
            let (kind, id) = r.map_err(e)?;
            if let Some(kind) = Kind::from_type_name(&kind) {
                k.adopted.insert((kind, id));
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT kind, natural_key, hh FROM passwords WHERE scope = ?1")
            .map_err(e)?;
        let rows = st
            .query_map(params![self.scope], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(e)?;
        for r in rows {
            let (kind, key, v) = r.map_err(e)?;
            if let Some(kind) = Kind::from_type_name(&kind) {
                k.passwords.insert((kind, key), v);
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT kind, owner, value FROM added WHERE scope = ?1")
            .map_err(e)?;
        let rows = st
            .query_map(params![self.scope], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })
            .map_err(e)?;
        for r in rows {
            let (kind, owner, value) = r.map_err(e)?;
            if let Some(kind) = Kind::from_type_name(&kind) {
                k.added.entry((kind, owner)).or_default().insert(value);
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT fkey, fp FROM fingerprints WHERE scope = ?1")
            .map_err(e)?;
        let rows = st
            .query_map(params![self.scope], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(e)?;
        for r in rows {
            let (key, v) = r.map_err(e)?;
            k.fingerprints.insert(key, v);
        }
        k.refusals = self.load_refusals()?;
        Ok(k)
    }

    /// The held licence refusals; a file from before the table existed holds none.
    fn load_refusals(&self) -> Result<HashMap<(Kind, String, String), Refusal>, StateError> {
        let e = |x: rusqlite::Error| Self::err(&self.path, x);
        let sql = "SELECT kind, natural_key, action, fp, message FROM refusals WHERE scope = ?1";
        let mut st = match self.conn.prepare(sql) {
            Ok(st) => st,
            Err(x) if x.to_string().contains("no such table") => return Ok(HashMap::new()),
            Err(x) => return Err(e(x)),
        };
        let rows = st
            .query_map(params![self.scope], |r| {
                let kind: String = r.get(0)?;
                let Some(kind) = Kind::from_type_name(&kind) else {
                    return Ok(None);
                };
                Ok(Some(Refusal {
                    kind,
                    key: r.get(1)?,
                    action: r.get(2)?,
                    fp: r.get(3)?,
                    message: r.get(4)?,
                }))
            })
            .map_err(e)?;
        let mut records = Vec::new();
        // Rows of a kind this version does not know are left out.
        for r in rows {
            records.extend(r.map_err(e)?);
        }
        Ok(Known::refusals_of(&records))
    }

    /// Replace the held licence refusals of this target with `records`.
    pub fn replace_refusals(&mut self, records: &[Refusal]) -> Result<(), StateError> {
        let r = self.write_refusals(records);
        self.mirror(r.is_ok(), |k| k.refusals = Known::refusals_of(records));
        r
    }

    fn write_refusals(&mut self, records: &[Refusal]) -> Result<(), StateError> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| Self::err(&path, x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM refusals WHERE scope = ?1", params![self.scope])
            .map_err(e)?;
        {
            let mut ins = tx
                .prepare("INSERT OR REPLACE INTO refusals VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(e)?;
            for r in records {
                ins.execute(params![
                    self.scope,
                    r.kind.type_name(),
                    r.key,
                    r.action,
                    r.fp,
                    r.message
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Record confirmed facts and fingerprints in one transaction.
    pub fn commit(
        &mut self,
        effects: &[Effect],
        set_fingerprints: &[(String, String)],
        drop_fingerprints: &[String],
    ) -> Result<(), StateError> {
        if effects.is_empty() && set_fingerprints.is_empty() && drop_fingerprints.is_empty() {
            return Ok(());
        }
        let r = self.write_facts(effects, set_fingerprints, drop_fingerprints);
        self.mirror(r.is_ok(), |k| {
            k.apply(effects, set_fingerprints, drop_fingerprints)
        });
        r
    }

    fn write_facts(
        &mut self,
        effects: &[Effect],
        set_fingerprints: &[(String, String)],
        drop_fingerprints: &[String],
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| Self::err(&path, x);
        let tx = self.conn.transaction().map_err(e)?;
        // Upserts that leave an unchanged row alone: a verify that confirms every fact
        // writes no page.
        {
            let sc = &self.scope;
            // (Each statement parsed once per commit, not once per fact.)
            let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
                tx.prepare_cached(sql).and_then(|mut st| st.execute(p))
            };
            for eff in effects {
                match eff {
                    Effect::Adopt { kind, id, key } => run(
                        "INSERT INTO adopted VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, kind, id)
                         DO UPDATE SET natural_key = excluded.natural_key
                         WHERE natural_key <> excluded.natural_key",
                        params![sc, kind.type_name(), id, key],
                    ),
                    Effect::Password { kind, key, hh } => run(
                        "INSERT INTO passwords VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (scope, kind, natural_key)
                         DO UPDATE SET hh = excluded.hh WHERE hh <> excluded.hh",
                        params![sc, kind.type_name(), key, hh],
                    ),
                    Effect::Added { kind, owner, value } => run(
                        "INSERT OR IGNORE INTO added VALUES (?1, ?2, ?3, ?4)",
                        params![sc, kind.type_name(), owner, value],
                    ),
                    Effect::Removed { kind, owner, value } => run(
                        "DELETE FROM added WHERE scope=?1 AND kind=?2 AND owner=?3 AND value=?4",
                        params![sc, kind.type_name(), owner, value],
                    ),
                }
                .map_err(e)?;
            }
            let mut ins = tx
                // An unchanged fingerprint (every one after a full verify) is not rewritten.
                .prepare(
                    "INSERT INTO fingerprints VALUES (?1, ?2, ?3) ON CONFLICT (scope, fkey)
                     DO UPDATE SET fp = excluded.fp WHERE fp <> excluded.fp",
                )
                .map_err(e)?;
            for (k, v) in set_fingerprints {
                ins.execute(params![sc, k, v]).map_err(e)?;
            }
            let mut del = tx
                .prepare("DELETE FROM fingerprints WHERE scope = ?1 AND fkey = ?2")
                .map_err(e)?;
            for k in drop_fingerprints {
                del.execute(params![sc, k]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::facts::hash_of_hash;

    #[test]
    fn records_survive_reopen_and_are_scoped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateStore::open(dir.path(), "default@http://a/").unwrap();
        s.commit(
            &[
                Effect::Adopt {
                    kind: Kind::Extension,
                    id: "x1".into(),
                    key: "1001".into(),
                },
                Effect::Password {
                    kind: Kind::User,
                    key: "1001".into(),
                    hh: hash_of_hash("ABC"),
                },
                Effect::Added {
                    kind: Kind::Email,
                    owner: "1001".into(),
                    value: "a@b.c".into(),
                },
            ],
            &[("contact/u1".into(), "fp1".into())],
            &[],
        )
        .unwrap();
        drop(s);
        let k = StateStore::load_read_only(dir.path(), "default@http://a/").unwrap();
        assert!(k.adopted.contains(&(Kind::Extension, "x1".into())));
        assert_eq!(
            k.passwords[&(Kind::User, "1001".into())],
            hash_of_hash("abc")
        );
        assert!(k.added[&(Kind::Email, "1001".into())].contains("a@b.c"));
        assert_eq!(k.fingerprints["contact/u1"], "fp1");
        // Another target sees nothing.
        let other = StateStore::load_read_only(dir.path(), "default@http://b/").unwrap();
        assert!(other.adopted.is_empty() && other.fingerprints.is_empty());

        let mut s = StateStore::open(dir.path(), "default@http://a/").unwrap();
        s.commit(
            &[Effect::Removed {
                kind: Kind::Email,
                owner: "1001".into(),
                value: "a@b.c".into(),
            }],
            &[],
            &["contact/u1".into()],
        )
        .unwrap();
        let k = s.load().unwrap();
        assert!(k.added.values().all(|v| v.is_empty()));
        assert!(k.fingerprints.is_empty());
    }

    #[test]
    fn read_only_load_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let k = StateStore::load_read_only(&dir.path().join("sub"), "x").unwrap();
        assert!(k.adopted.is_empty());
        assert!(!dir.path().join("sub").exists());
    }

    #[test]
    fn the_file_never_holds_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let hash = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8";
        let mut s = StateStore::open(dir.path(), "x").unwrap();
        s.commit(
            &[Effect::Password {
                kind: Kind::User,
                key: "u".into(),
                hh: hash_of_hash(hash),
            }],
            &[],
            &[],
        )
        .unwrap();
        drop(s);
        let mut all = Vec::new();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        let text = String::from_utf8_lossy(&all);
        assert!(!text.contains(hash));
    }

    #[test]
    fn an_emptied_or_damaged_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateStore::open(dir.path(), "x").unwrap();
        s.commit(&[], &[("fp".into(), "1".into())], &[]).unwrap();
        drop(s);
        let path = dir.path().join(STATE_FILE);
        assert!(dir.path().join(STATE_MARKER).exists());
        std::fs::File::create(&path).unwrap(); // 0 bytes
        let e = StateStore::load_read_only(dir.path(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("0 bytes") && e.contains("--repair"), "{e}");
        // A process starting on it (never opened before here) refuses too.
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir.path().join(STATE_MARKER),
            other.path().join(STATE_MARKER),
        )
        .unwrap();
        std::fs::File::create(other.path().join(STATE_FILE)).unwrap();
        let e = StateStore::open(other.path(), "x")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("0 bytes"), "{e}");
        // Garbage where the database was: the integrity check names it.
        let third = tempfile::tempdir().unwrap();
        std::fs::write(third.path().join(STATE_FILE), vec![0x5a; 8192]).unwrap();
        let e = StateStore::open(third.path(), "x")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is damaged") && e.contains(STATE_FILE), "{e}");
        // Deleting the state is allowed: it only costs a slower pass.
        std::fs::remove_file(&path).unwrap();
        assert!(StateStore::load_read_only(dir.path(), "x").is_ok());
    }
}
