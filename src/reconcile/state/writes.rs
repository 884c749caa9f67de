//! The last pass that wrote each object: when, which pass (its start time) and what it did
//! (create, update, adopt, or a change to one of its parts: a user's contact, e-mails and
//! phones, an extension's managing user). `--explain` and the status page's object pages
//! show it.
//!
//! Rows are keyed by the object's kind and natural key (a part's write is its owner's row)
//! and scoped by target like every other row. A pass records a row only after the server
//! confirmed the operation; the agent deleting the object deletes its row. The first write of
//! a pass stands for the pass (a user created and then given a contact reads "create"). The
//! table is created if missing, so an older state file keeps working; losing it costs only
//! this line.

use super::{StateError, StateStore};
use crate::model::Kind;
use crate::reconcile::facts::Effect;
use crate::reconcile::plan::{Action, Op};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One confirmed write to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// `part` (the object's own kind, or one of its parts) was written by `action`.
    Wrote {
        kind: Kind,
        key: String,
        part: Kind,
        action: &'static str,
    },
    /// The agent deleted the object: its row goes.
    Deleted { kind: Kind, key: String },
}

impl Write {
    /// What a confirmed `op` means for its object's row.
    pub fn of_op(op: &Op) -> Write {
        let owner = op.kind.facts().keyed_by;
        match (op.action, owner) {
            (Action::Delete, None) => Write::Deleted {
                kind: op.kind,
                key: op.key.clone(),
            },
            (action, _) => Write::Wrote {
                kind: owner.unwrap_or(op.kind),
                key: op.key.clone(),
                part: op.kind,
                action: match action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Delete => "delete",
                },
            },
        }
    }
}

impl Write {
    /// Objects adopted as they were (the adoption a verified fact, no write): `adopt`.
    pub fn adoptions(verified: &[Effect]) -> Vec<Write> {
        verified
            .iter()
            .filter_map(|e| match e {
                Effect::Adopt { kind, key, .. } => Some(Write::Wrote {
                    kind: *kind,
                    key: key.clone(),
                    part: *kind,
                    action: "adopt",
                }),
                _ => None,
            })
            .collect()
    }
}

/// The last write of one object, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastWrite {
    /// `create`, `update`, `delete` (of a part) or `adopt` (taken over without a write).
    pub action: String,
    /// The part written, when it is not the object itself (`contact`, `email`, …).
    pub part: Option<String>,
    /// When the server confirmed it (RFC 3339 UTC).
    pub written_at: String,
    /// The start of the pass that wrote it (RFC 3339 UTC), as the pass report shows it.
    pub pass_started: String,
}

impl LastWrite {
    /// One line for people: "last written by the pass of … (create)".
    pub fn sentence(&self) -> String {
        let what = match &self.part {
            Some(p) => format!("{} of its {p}", self.action),
            None => self.action.clone(),
        };
        if self.action == "adopt" {
            return format!(
                "not written by this agent: adopted as it was by the pass of {} (at {})",
                self.pass_started, self.written_at
            );
        }
        format!(
            "last written by the pass of {} ({what}) at {}",
            self.pass_started, self.written_at
        )
    }
}

/// Milliseconds since the epoch (a clock before it counts as the epoch).
fn ms(t: SystemTime) -> i64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 UTC to the second; a stored value humantime cannot show reads as the epoch.
fn utc(ms: i64) -> String {
    use std::fmt::Write as _;
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let mut s = String::new();
    match write!(s, "{}", humantime::format_rfc3339_seconds(t)) {
        Ok(()) => s,
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

impl StateStore {
    /// Record confirmed writes of the pass that started at `pass`. An object already written
    /// by this same pass keeps its first record.
    pub fn record_writes(&mut self, pass: SystemTime, writes: &[Write]) -> Result<(), StateError> {
        if writes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |x: rusqlite::Error| Self::err(&path, x);
        let now = ms(SystemTime::now());
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO writes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (scope, kind, natural_key) DO UPDATE SET part = excluded.part,
                       action = excluded.action, written_ms = excluded.written_ms,
                       pass_ms = excluded.pass_ms
                     WHERE writes.pass_ms <> excluded.pass_ms",
                )
                .map_err(e)?;
            let mut del = tx
                .prepare("DELETE FROM writes WHERE scope = ?1 AND kind = ?2 AND natural_key = ?3")
                .map_err(e)?;
            for w in writes {
                match w {
                    Write::Wrote {
                        kind,
                        key,
                        part,
                        action,
                    } => ins.execute(params![
                        self.scope,
                        kind.type_name(),
                        key,
                        part.type_name(),
                        action,
                        now,
                        ms(pass)
                    ]),
                    Write::Deleted { kind, key } => {
                        del.execute(params![self.scope, kind.type_name(), key])
                    }
                }
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// The last write of one object, read without creating or changing anything. A missing
    /// file or a file from before the table existed knows none.
    pub fn last_write(
        dir: &Path,
        scope: &str,
        kind: Kind,
        key: &str,
    ) -> Result<Option<LastWrite>, StateError> {
        let path = dir.join(super::STATE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let e = |x: rusqlite::Error| Self::err(&path, x);
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let conn = rusqlite::Connection::open_with_flags(&path, flags).map_err(e)?;
        let sql = "SELECT part, action, written_ms, pass_ms FROM writes
                   WHERE scope = ?1 AND kind = ?2 AND natural_key = ?3";
        let mut st = match conn.prepare(sql) {
            Ok(st) => st,
            Err(x) if x.to_string().contains("no such table") => return Ok(None),
            Err(x) => return Err(e(x)),
        };
        let row = st
            .query_row(params![scope, kind.type_name(), key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()
            .map_err(e)?;
        Ok(row.map(|(part, action, written, pass)| LastWrite {
            part: (part != kind.type_name()).then(|| {
                Kind::from_type_name(&part).map_or(part.clone(), |k| k.label().to_string())
            }),
            action,
            written_at: utc(written),
            pass_started: utc(pass),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrote(kind: Kind, key: &str, part: Kind, action: &'static str) -> Write {
        Write::Wrote {
            kind,
            key: key.into(),
            part,
            action,
        }
    }

    #[test]
    fn the_last_pass_wins_the_first_write_of_a_pass_stands_and_a_delete_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let scope = "default@http://a/";
        let first = UNIX_EPOCH + Duration::from_secs(1_796_530_323); // 2026-12-06T04:12:03Z
        let second = first + Duration::from_secs(60);
        let mut s = StateStore::open(dir.path(), scope).unwrap();
        assert_eq!(
            StateStore::last_write(dir.path(), scope, Kind::User, "alice").unwrap(),
            None
        );
        s.record_writes(
            first,
            &[
                wrote(Kind::User, "alice", Kind::User, "create"),
                wrote(Kind::User, "alice", Kind::Contact, "update"),
                wrote(Kind::Extension, "1001", Kind::Extension, "create"),
            ],
        )
        .unwrap();
        let w = StateStore::last_write(dir.path(), scope, Kind::User, "alice")
            .unwrap()
            .unwrap();
        assert_eq!(w.pass_started, "2026-12-06T04:12:03Z");
        assert_eq!((w.action.as_str(), w.part.as_deref()), ("create", None));
        assert!(
            w.sentence()
                .starts_with("last written by the pass of 2026-12-06T04:12:03Z (create) at "),
            "{}",
            w.sentence()
        );
        // Another target knows nothing of it.
        assert_eq!(
            StateStore::last_write(dir.path(), "default@http://b/", Kind::User, "alice").unwrap(),
            None
        );
        // A later pass that changed only an e-mail address is now the last writer.
        s.record_writes(second, &[wrote(Kind::User, "alice", Kind::Email, "delete")])
            .unwrap();
        let w = StateStore::last_write(dir.path(), scope, Kind::User, "alice")
            .unwrap()
            .unwrap();
        assert_eq!(w.pass_started, "2026-12-06T04:13:03Z");
        assert!(
            w.sentence().contains("(delete of its e-mail)"),
            "{}",
            w.sentence()
        );
        // Deleting the extension deletes its row; the user's stays.
        s.record_writes(
            second,
            &[Write::Deleted {
                kind: Kind::Extension,
                key: "1001".into(),
            }],
        )
        .unwrap();
        drop(s);
        assert_eq!(
            StateStore::last_write(dir.path(), scope, Kind::Extension, "1001").unwrap(),
            None
        );
        assert!(
            StateStore::last_write(dir.path(), scope, Kind::User, "alice")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_state_file_from_before_the_table_knows_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join(super::super::STATE_FILE)).unwrap();
        conn.execute_batch(
            "CREATE TABLE adopted (scope TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,
             natural_key TEXT NOT NULL, PRIMARY KEY (scope, kind, id));",
        )
        .unwrap();
        drop(conn);
        assert_eq!(
            StateStore::last_write(dir.path(), "x", Kind::Queue, "400").unwrap(),
            None
        );
        // Opening it for a pass adds the table; the old rows stay readable.
        let mut s = StateStore::open(dir.path(), "x").unwrap();
        s.record_writes(
            SystemTime::now(),
            &[wrote(Kind::Queue, "400", Kind::Queue, "update")],
        )
        .unwrap();
        assert!(s.load().is_ok());
        drop(s);
        let w = StateStore::last_write(dir.path(), "x", Kind::Queue, "400").unwrap();
        assert_eq!(w.map(|w| w.action), Some("update".to_string()));
    }
}
