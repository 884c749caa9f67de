//! The durable store of the embedded endpoint.
//!
//! Every object is a JSON document addressed by a *scope* (its collection, e.g.
//! `cs/<coreServerId>/extensions`) and an id. Scopes are paths, so deleting a parent is deleting
//! every scope below `cs/<id>/`. Reads are served from an in-memory copy that keeps each object
//! only as its serialised bytes: a 10,000-item GET is a concatenation, not a serialisation, and
//! a parsed `Value` per object would cost several times the memory (the few handlers that look
//! inside a stored object parse it on demand).
//! Writes change memory under a lock and queue their records, in that same order; the first of
//! them that finds no commit running appends everything queued to the store log in one `write`
//! (group commit, [`writer`]; the file's format: [`log`]) and only then are they acknowledged;
//! so a 204 is sent only for a committed write, which survives `kill -9`. Each write also
//! queues how to undo its memory changes: when a commit fails (disk full), the leader undoes
//! that group and everything queued after it (built on top of it) in reverse order before
//! answering, so memory equals disk again, the clients get a 500, and the next write simply
//! tries again (no restart needed once the disk has room).
//! A lock file (`flock`) keeps a second process off the same `data_dir`.

mod legacy;
pub mod log;
mod open;
mod writer;

use super::error::Error;
use axum::body::Bytes;
use log::{LogFile, Record};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use writer::{Op, Pending, Queue, Shared, Undoable};

/// One stored object.
#[derive(Debug, Clone)]
pub struct Item {
    seq: u64,
    key: Option<String>,
    pub bytes: Bytes,
}

impl Item {
    /// The store's insertion sequence number: kept by an update, new for every insertion, so a
    /// deleted and re-created object (same id) has a different one (the Live API's ids follow it).
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The object, parsed (the store only holds bytes it serialised itself from a `Value`).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    /// One string field of the object.
    pub fn str_field(&self, name: &str) -> Option<String> {
        match self.value() {
            Value::Object(mut m) => match m.remove(name) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `"name":"value"` exactly as serde_json writes it (compact, escaped): a cheap pre-filter for
/// "does this stored object have this string field", checked properly only on a match.
fn field_needle(name: &str, value: &str) -> Vec<u8> {
    format!("{}:{}", Value::from(name), Value::from(value)).into_bytes()
}

/// One collection: objects by id (each with its insertion sequence number), ids by natural key.
/// Insertion order is recovered by sorting on the sequence number when listing, rather than kept
/// in a second map: most collections hold one object (a user's contact, its e-mail list), and a
/// per-collection ordered index cost more memory than the objects.
#[derive(Debug, Default)]
pub struct Coll {
    items: HashMap<String, Item>,
    keys: HashMap<String, String>,
}

impl Coll {
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// The JSON array of all objects. Built per GET rather than cached: a cache would hold a
    /// second copy of every listed collection for an idle server, and the copy is a memcpy.
    pub fn listing(&self) -> Bytes {
        let size: usize = self.items.values().map(|i| i.bytes.len() + 1).sum();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'[');
        for (n, (_, item)) in self.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&item.bytes);
        }
        out.push(b']');
        Bytes::from(out)
    }

    /// Objects in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Item)> {
        let mut all: Vec<(&str, &Item)> = self
            .items
            .iter()
            .map(|(id, it)| (id.as_str(), it))
            .collect();
        all.sort_unstable_by_key(|(_, it)| it.seq);
        all.into_iter()
    }
}

/// The in-memory state (the whole store).
#[derive(Debug, Default)]
pub struct State {
    colls: BTreeMap<String, Coll>,
    seq: u64,
    /// Moves on every write and every rollback: readers that derive something from the
    /// state (the Live API's view of a core server) rebuild it only when this moved.
    generation: u64,
}

impl State {
    /// Moves whenever the state may have changed (every write, every rollback).
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn coll(&self, scope: &str) -> Option<&Coll> {
        self.colls.get(scope)
    }
    pub fn get(&self, scope: &str, id: &str) -> Option<&Item> {
        self.colls.get(scope)?.items.get(id)
    }
    pub fn contains(&self, scope: &str, id: &str) -> bool {
        self.get(scope, id).is_some()
    }
    /// The id of the object whose natural key is `key`.
    pub fn id_by_key(&self, scope: &str, key: &str) -> Option<&str> {
        self.colls.get(scope)?.keys.get(key).map(String::as_str)
    }
    /// Objects of a scope in insertion order (empty when the scope has none).
    pub fn items<'a>(&'a self, scope: &str) -> Box<dyn Iterator<Item = (&'a str, &'a Item)> + 'a> {
        match self.colls.get(scope) {
            Some(c) => Box::new(c.iter()),
            None => Box::new(std::iter::empty()),
        }
    }
    /// Ids of the objects of `scope` whose string field `name` is `value`, in no particular order.
    /// Linear, but a byte search per object rather than a parse (a user's deletion scans every
    /// extension binding).
    pub fn ids_with(&self, scope: &str, name: &str, value: &str) -> Vec<String> {
        let Some(coll) = self.colls.get(scope) else {
            return Vec::new();
        };
        let needle = field_needle(name, value);
        coll.items
            .iter()
            .filter(|(_, it)| {
                it.bytes
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
                    && it.str_field(name).as_deref() == Some(value)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
    /// Scopes that start with `prefix`.
    pub fn scopes_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.colls
            .range(prefix.to_string()..)
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(prefix))
    }

    fn put_raw(
        &mut self,
        scope: &str,
        id: &str,
        seq: u64,
        key: Option<String>,
        value: Value,
    ) -> Bytes {
        let mut json = serde_json::to_vec(&value)
            .expect("a derived Serialize with string keys always serialises");
        // to_vec grows by doubling; the store keeps every object, so keep only what is used.
        json.shrink_to_fit();
        let bytes = Bytes::from(json);
        self.insert(
            scope,
            id,
            Item {
                seq,
                key,
                bytes: bytes.clone(),
            },
        );
        bytes
    }

    /// An object as the log holds it (its body already JSON, checked by the caller).
    fn put_loaded(&mut self, scope: &str, id: &str, seq: u64, key: Option<&str>, body: &[u8]) {
        let key = key.map(str::to_string);
        let bytes = Bytes::copy_from_slice(body);
        self.insert(scope, id, Item { seq, key, bytes });
    }

    /// Insert or replace one object, its natural key moved with it.
    fn insert(&mut self, scope: &str, id: &str, item: Item) {
        let coll = self.colls.entry(scope.to_string()).or_default();
        if let Some(old) = coll.items.get(id) {
            if let Some(k) = &old.key {
                coll.keys.remove(k);
            }
        }
        if let Some(k) = &item.key {
            coll.keys.insert(k.clone(), id.to_string());
        }
        self.seq = self.seq.max(item.seq);
        coll.items.insert(id.to_string(), item);
    }

    /// Every scope starting with `prefix` removed (a parent's children).
    fn remove_prefix(&mut self, prefix: &str) -> Vec<(String, Coll)> {
        let scopes: Vec<String> = self
            .scopes_with_prefix(prefix)
            .map(str::to_string)
            .collect();
        scopes
            .into_iter()
            .filter_map(|s| self.colls.remove(&s).map(|c| (s, c)))
            .collect()
    }

    fn remove(&mut self, scope: &str, id: &str) -> Option<Item> {
        let coll = self.colls.get_mut(scope)?;
        let old = coll.items.remove(id)?;
        if let Some(k) = &old.key {
            coll.keys.remove(k);
        }
        if coll.items.is_empty() {
            self.colls.remove(scope);
        }
        Some(old)
    }

    /// Put back an object exactly as it was (sequence number and natural key included).
    fn restore(&mut self, scope: String, id: String, item: Item) {
        let coll = self.colls.entry(scope).or_default();
        if let Some(k) = &item.key {
            coll.keys.insert(k.clone(), id.clone());
        }
        coll.items.insert(id, item);
    }
}

impl Undoable for State {
    type Undo = Undo;
    /// Undo the memory changes of one write, latest first.
    fn rollback(&mut self, undo: Undo) {
        self.generation += 1;
        for step in undo.steps.into_iter().rev() {
            match step {
                Step::Put { scope, id, old } => {
                    self.remove(&scope, &id);
                    if let Some(item) = old {
                        self.restore(scope, id, item);
                    }
                }
                Step::Del { scope, id, old } => self.restore(scope, id, old),
                Step::DelPrefix(colls) => self.colls.extend(colls),
            }
        }
        self.seq = undo.seq;
    }

    fn records(&self) -> Vec<Record<'_>> {
        let mut out = Vec::with_capacity(self.colls.values().map(Coll::len).sum());
        for (scope, coll) in &self.colls {
            for (id, item) in coll.iter() {
                out.push(Record::Put {
                    seq: item.seq,
                    scope,
                    id,
                    key: item.key.as_deref(),
                    body: &item.bytes,
                });
            }
        }
        out
    }
}

/// One memory change and what was there before it.
#[derive(Debug)]
enum Step {
    Put {
        scope: String,
        id: String,
        old: Option<Item>,
    },
    Del {
        scope: String,
        id: String,
        old: Item,
    },
    DelPrefix(Vec<(String, Coll)>),
}

/// How to take one write back out of memory: its steps and the sequence counter before it.
#[derive(Debug, Default)]
struct Undo {
    steps: Vec<Step>,
    seq: u64,
}

/// A write in progress: reads see earlier writes of the same transaction. Callers check
/// everything before their first `put`/`delete` so an error never leaves half a change.
pub struct Tx<'a> {
    st: &'a mut State,
    ops: Vec<Op>,
    undo: Undo,
}

impl std::ops::Deref for Tx<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.st
    }
}

impl Tx<'_> {
    /// Insert or replace; a replaced object keeps its place in the collection order.
    pub fn put(&mut self, scope: &str, id: &str, key: Option<String>, value: Value) {
        let old = self.st.get(scope, id).cloned();
        let seq = match &old {
            Some(old) => old.seq,
            None => self.st.seq + 1,
        };
        self.undo.steps.push(Step::Put {
            scope: scope.into(),
            id: id.into(),
            old,
        });
        let body = self.st.put_raw(scope, id, seq, key.clone(), value);
        self.ops.push(Op::Put {
            scope: scope.into(),
            id: id.into(),
            seq,
            key,
            body,
        });
    }

    pub fn delete(&mut self, scope: &str, id: &str) -> bool {
        let Some(old) = self.st.remove(scope, id) else {
            return false;
        };
        self.undo.steps.push(Step::Del {
            scope: scope.into(),
            id: id.into(),
            old,
        });
        self.ops.push(Op::Del {
            scope: scope.into(),
            id: id.into(),
        });
        true
    }

    /// Delete every object in every scope starting with `prefix` (a parent's children).
    pub fn delete_prefix(&mut self, prefix: &str) {
        let removed = self.st.remove_prefix(prefix);
        self.undo.steps.push(Step::DelPrefix(removed));
        self.ops.push(Op::DelPrefix(prefix.into()));
    }
}

/// Why the store could not be opened; phrased for an administrator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create data_dir {path}: {source} (set [server] data_dir to a writable directory)"
    )]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data_dir {path} is not writable: {source} (set [server] data_dir to a writable directory)"
    )]
    Lockfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data_dir {path} is in use by another isymphony-sync process (lock file {lock} is held)"
    )]
    Locked { path: PathBuf, lock: PathBuf },
    /// The store of an earlier version, read once to be carried over into the log.
    #[error("cannot open the store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot read or write the store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Damaged(#[from] crate::integrity::Damaged),
}

pub struct Store {
    /// The state, the queue of writes and the log, shared with the leaders' successors.
    shared: Arc<Shared<State>>,
    lock: Mutex<Option<File>>,
}

impl Store {
    /// Open (or create) the store in `data_dir`, take its lock and load it into memory.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let (log, state, lock) = open::open(data_dir)?;
        Ok(Store {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                queue: Mutex::new(Queue::default()),
                log: Mutex::new(Some(log)),
            }),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Run `f` against the current state (no I/O).
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let st = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        f(&st)
    }

    /// Apply a change to memory, then wait until it is committed to disk. When `f` fails, or
    /// the commit does, memory is put back as it was.
    pub async fn write<T>(&self, f: impl FnOnce(&mut Tx) -> Result<T, Error>) -> Result<T, Error> {
        let (out, wait) = {
            let mut guard = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
            let seq = guard.seq;
            let mut tx = Tx {
                st: &mut guard,
                ops: Vec::new(),
                undo: Undo {
                    steps: Vec::new(),
                    seq,
                },
            };
            let out = f(&mut tx);
            let Tx { ops, undo, .. } = tx;
            guard.generation += 1;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    guard.rollback(undo);
                    return Err(e);
                }
            };
            if ops.is_empty() {
                return Ok(out);
            }
            // Queued while the state lock is held, so disk order equals memory order.
            let mut q = self.shared.queue();
            if q.closed {
                drop(q);
                guard.rollback(undo);
                return Err(Error::Internal("the store is closed".into()));
            }
            let (ack, wait) = if q.leading {
                let (ack, rx) = tokio::sync::oneshot::channel();
                (Some(ack), Some(rx))
            } else {
                q.leading = true;
                (None, None)
            };
            q.pending.push(Pending { ops, undo, ack });
            (out, wait)
        };
        let outcome = match wait {
            // The leader: commit now, in this poll (no await until it is done).
            None => self.shared.lead(),
            Some(rx) => rx
                .await
                .map_err(|_| Error::Internal("store commit abandoned".into()))?,
        };
        match outcome {
            Ok(()) => Ok(out),
            Err(e) => Err(Error::Internal(format!("store commit failed: {e}"))),
        }
    }

    /// Finish all queued writes, refuse new ones, flush the log to disk and release the
    /// data_dir lock.
    pub async fn close(&self) {
        let idle = {
            let mut q = self.shared.queue();
            q.closed = true;
            q.leading.then(|| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                q.idle = Some(tx);
                rx
            })
        };
        if let Some(idle) = idle {
            let _ = idle.await;
        }
        let log: Option<LogFile> = self
            .shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(log) = log {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = log.sync() {
                    tracing::warn!(file = %log.path().display(), error = %e, "store flush at shutdown failed");
                }
            })
            .await;
        }
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests;
