//! Moving rows off a scope that held URL credentials.
//!
//! Rows are scoped by `slug@url`. Before the URL's `user:password@` was taken out of the
//! target, a URL written with credentials put them into every row's scope, i.e. into the
//! file. [`StateStore::move_scope`] moves such rows to the store's (credential-free) scope,
//! so nothing the agent knew is forgotten, and overwrites the old rows' bytes: SQLite's
//! `secure_delete` zeroes freed content and a WAL checkpoint empties the log that still held
//! the old pages.

use super::{StateError, StateStore};
use rusqlite::params;

/// Every table with a `scope` column.
const TABLES: &[&str] = &["adopted", "passwords", "added", "fingerprints", "writes"];

impl StateStore {
    /// Move the rows of scope `old` to this store's scope (rows already there win) and wipe
    /// the old ones from the file. Returns how many rows were under `old`.
    pub fn move_scope(&mut self, old: &str) -> Result<usize, StateError> {
        if old == self.scope {
            return Ok(0);
        }
        // Rows move: what was loaded before is not what the file holds (`StateStore::load`).
        self.known = None;
        let path = self.path.clone();
        let e = |x: rusqlite::Error| Self::err(&path, x);
        self.conn
            .execute_batch("PRAGMA secure_delete = ON;")
            .map_err(e)?;
        let tx = self.conn.transaction().map_err(e)?;
        let mut moved = 0;
        for t in TABLES {
            let n: usize = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM {t} WHERE scope = ?1"),
                    [old],
                    |r| r.get(0),
                )
                .map_err(e)?;
            if n == 0 {
                continue;
            }
            moved += n;
            tx.execute(
                &format!("UPDATE OR IGNORE {t} SET scope = ?1 WHERE scope = ?2"),
                params![self.scope, old],
            )
            .map_err(e)?;
            tx.execute(&format!("DELETE FROM {t} WHERE scope = ?1"), [old])
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        if moved > 0 {
            self.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
                .map_err(e)?;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Effect, Kind, StateStore, STATE_FILE};

    fn adopt(key: &str) -> Effect {
        Effect::Adopt {
            kind: Kind::Extension,
            id: format!("id-{key}"),
            key: key.into(),
        }
    }

    #[test]
    fn rows_move_to_the_clean_scope_and_the_credentials_leave_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = "default@http://ops:Sc0pe-Secret-1@pbx:58080/x";
        let new = "default@http://pbx:58080/x";
        {
            let mut s = StateStore::open(dir.path(), old).unwrap();
            let fp = vec![("contact/1001".to_string(), "abc".to_string())];
            s.commit(&[adopt("1001"), adopt("1002")], &fp, &[]).unwrap();
        }
        {
            let mut s = StateStore::open(dir.path(), new).unwrap();
            s.commit(&[adopt("1002")], &[], &[]).unwrap();
            assert_eq!(s.move_scope(old).unwrap(), 3);
            let k = s.load().unwrap();
            assert_eq!(k.adopted.len(), 2);
            assert_eq!(
                k.fingerprints.get("contact/1001").map(String::as_str),
                Some("abc")
            );
            assert_eq!(
                s.move_scope(old).unwrap(),
                0,
                "nothing left under the old scope"
            );
        }
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let p = f.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("Sc0pe-Secret-1"),
                "{} still holds it",
                p.display()
            );
        }
        assert!(dir.path().join(STATE_FILE).exists());
    }
}
