//! The durable store of the embedded endpoint.
//!
//! Every object is a JSON document addressed by a *scope* (its collection, e.g.
//! `cs/<coreServerId>/extensions`) and an id. Scopes are paths, so deleting a parent is deleting
//! every scope below `cs/<id>/`. Reads are served from an in-memory copy that keeps each object
//! only as its serialised bytes: a 10,000-item GET is a concatenation, not a serialisation, and
//! a parsed `Value` per object would cost several times the memory (the few handlers that look
//! inside a stored object parse it on demand).
//! Writes change memory under a lock and queue their SQLite operations, in that same order, to a
//! single writer thread, which commits everything queued in one transaction (group commit) and
//! only then acknowledges; so a 204 is sent only for a committed write, which survives
//! `kill -9`. A lock file (`flock`) keeps a second process off the same `data_dir`.

use super::error::Error;
use axum::body::Bytes;
use rusqlite::{params, Connection};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

/// One stored object.
#[derive(Debug, Clone)]
pub struct Item {
    seq: u64,
    key: Option<String>,
    pub bytes: Bytes,
}

impl Item {
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
}

impl State {
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
        let mut json = serde_json::to_vec(&value).unwrap_or_default();
        // to_vec grows by doubling; the store keeps every object, so keep only what is used.
        json.shrink_to_fit();
        let bytes = Bytes::from(json);
        let out = bytes.clone();
        let coll = self.colls.entry(scope.to_string()).or_default();
        if let Some(old) = coll.items.get(id) {
            if let Some(k) = &old.key {
                coll.keys.remove(k);
            }
        }
        if let Some(k) = &key {
            coll.keys.insert(k.clone(), id.to_string());
        }
        coll.items.insert(id.to_string(), Item { seq, key, bytes });
        self.seq = self.seq.max(seq);
        out
    }

    fn remove(&mut self, scope: &str, id: &str) -> bool {
        let Some(coll) = self.colls.get_mut(scope) else {
            return false;
        };
        let Some(old) = coll.items.remove(id) else {
            return false;
        };
        if let Some(k) = &old.key {
            coll.keys.remove(k);
        }
        if coll.items.is_empty() {
            self.colls.remove(scope);
        }
        true
    }
}

/// A SQLite operation, queued for the writer in memory order.
#[derive(Debug)]
enum Op {
    Put {
        scope: String,
        id: String,
        seq: u64,
        key: Option<String>,
        /// The serialised object (shared with the in-memory copy; JSON is UTF-8).
        body: Bytes,
    },
    Del {
        scope: String,
        id: String,
    },
    DelPrefix(String),
}

/// A write in progress: reads see earlier writes of the same transaction. Callers check
/// everything before their first `put`/`delete` so an error never leaves half a change.
pub struct Tx<'a> {
    st: &'a mut State,
    ops: Vec<Op>,
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
        let seq = match self.st.get(scope, id) {
            Some(old) => old.seq,
            None => self.st.seq + 1,
        };
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
        let removed = self.st.remove(scope, id);
        if removed {
            self.ops.push(Op::Del {
                scope: scope.into(),
                id: id.into(),
            });
        }
        removed
    }

    /// Delete every object in every scope starting with `prefix` (a parent's children).
    pub fn delete_prefix(&mut self, prefix: &str) {
        let scopes: Vec<String> = self
            .st
            .scopes_with_prefix(prefix)
            .map(str::to_string)
            .collect();
        for s in scopes {
            self.st.colls.remove(&s);
        }
        self.ops.push(Op::DelPrefix(prefix.into()));
    }
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

enum Msg {
    Batch(Vec<Op>, Ack),
    Close(tokio::sync::oneshot::Sender<()>),
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
    #[error("cannot open the store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

pub struct Store {
    state: RwLock<State>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    failed: Arc<AtomicBool>,
    lock: Mutex<Option<File>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS objects (
    scope TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, nkey TEXT, body TEXT NOT NULL,
    PRIMARY KEY (scope, id))";

impl Store {
    /// Open (or create) the store in `data_dir`, take its lock and load it into memory.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.into(),
            source,
        })?;
        let lock_path = data_dir.join("store.lock");
        let lock = lock_dir(data_dir, &lock_path)?;
        let db_path = data_dir.join("store.sqlite3");
        let sq = |source| StoreError::Sqlite {
            path: db_path.clone(),
            source,
        };
        let conn = Connection::open(&db_path).map_err(sq)?;
        // WAL + synchronous=NORMAL: a commit has written the WAL (the OS holds it) before we
        // acknowledge, so it survives the process being killed; only an OS crash or power loss
        // can lose the last commits, and an fsync per commit would cap write throughput.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sq)?;
        conn.execute_batch(SCHEMA).map_err(sq)?;
        let mut state = State::default();
        {
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
                    Err(e) => {
                        tracing::warn!(%scope, %id, error = %e, "skipping unreadable stored object")
                    }
                }
            }
        }
        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let f2 = failed.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, f2))
            .map_err(|e| StoreError::Lockfile {
                path: data_dir.into(),
                source: e,
            })?;
        Ok(Store {
            state: RwLock::new(state),
            tx: Mutex::new(Some(tx)),
            failed,
            lock: Mutex::new(Some(lock)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Run `f` against the current state (no I/O).
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&st)
    }

    /// Apply a change to memory, then wait until it is committed to disk.
    pub async fn write<T>(&self, f: impl FnOnce(&mut Tx) -> Result<T, Error>) -> Result<T, Error> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(Error::Internal(
                "the store had a write failure earlier; refusing further writes".into(),
            ));
        }
        let rx = {
            let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
            let mut tx = Tx {
                st: &mut st,
                ops: Vec::new(),
            };
            let out = f(&mut tx)?;
            if tx.ops.is_empty() {
                return Ok(out);
            }
            let (ack, rx) = tokio::sync::oneshot::channel();
            // Queued while the state lock is held, so disk order equals memory order.
            let sent = match &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(sender) => sender.send(Msg::Batch(tx.ops, ack)).is_ok(),
                None => false,
            };
            if !sent {
                return Err(Error::Internal("the store is closed".into()));
            }
            (out, rx)
        };
        let (out, rx) = rx;
        match rx.await {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(Error::Internal(format!("store commit failed: {e}"))),
            Err(_) => Err(Error::Internal("store writer stopped".into())),
        }
    }

    /// Finish all queued writes, stop the writer and release the data_dir lock.
    pub async fn close(&self) {
        let sender = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sender) = sender {
            let (done, rx) = tokio::sync::oneshot::channel();
            if sender.send(Msg::Close(done)).is_ok() {
                let _ = rx.await;
            }
        }
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = writer {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn lock_dir(data_dir: &Path, lock_path: &Path) -> Result<File, StoreError> {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
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

/// Group commit: take everything queued, commit it in one transaction, then acknowledge all.
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Msg>, failed: Arc<AtomicBool>) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut batches = Vec::new();
        let mut push = |m: Msg, closing: &mut Option<_>| match m {
            Msg::Batch(ops, ack) => batches.push((ops, ack)),
            Msg::Close(done) => *closing = Some(done),
        };
        push(first, &mut closing);
        while closing.is_none() {
            match rx.try_recv() {
                Ok(m) => push(m, &mut closing),
                Err(_) => break,
            }
        }
        if batches.is_empty() {
            continue;
        }
        let result = commit(&mut conn, &batches).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "store commit failed; further writes are refused");
            failed.store(true, Ordering::Relaxed);
        }
        for (_, ack) in batches {
            let _ = ack.send(result.clone());
        }
    }
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

fn commit(conn: &mut Connection, batches: &[(Vec<Op>, Ack)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO objects (scope, id, seq, nkey, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM objects WHERE scope = ?1 AND id = ?2")?;
        let mut del_prefix =
            tx.prepare_cached("DELETE FROM objects WHERE substr(scope, 1, length(?1)) = ?1")?;
        for (ops, _) in batches {
            for op in ops {
                match op {
                    Op::Put {
                        scope,
                        id,
                        seq,
                        key,
                        body,
                    } => {
                        let text = std::str::from_utf8(body).unwrap_or("null");
                        put.execute(params![scope, id, *seq as i64, key, text])?;
                    }
                    Op::Del { scope, id } => {
                        del.execute(params![scope, id])?;
                    }
                    Op::DelPrefix(p) => {
                        del_prefix.execute(params![p])?;
                    }
                }
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn writes_survive_reopen_and_keep_order() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.write(|tx| {
            tx.put("a", "2", Some("k2".into()), json!({"n": 2}));
            tx.put("a", "1", Some("k1".into()), json!({"n": 1}));
            tx.put("cs/x/e", "9", None, json!(9));
            Ok(())
        })
        .await
        .unwrap();
        s.write(|tx| {
            tx.put("a", "2", Some("k3".into()), json!({"n": 3}));
            tx.delete_prefix("cs/x/");
            Ok(())
        })
        .await
        .unwrap();
        s.close().await;
        let s = Store::open(dir.path()).unwrap();
        s.read(|st| {
            let ids: Vec<_> = st.items("a").map(|(id, _)| id.to_string()).collect();
            assert_eq!(ids, ["2", "1"]);
            assert_eq!(st.id_by_key("a", "k3"), Some("2"));
            assert_eq!(st.id_by_key("a", "k2"), None);
            assert!(st.coll("cs/x/e").is_none());
        });
        s.close().await;
    }

    #[tokio::test]
    async fn second_open_of_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let e = Store::open(dir.path()).err().unwrap();
        assert!(e.to_string().contains("in use"), "{e}");
        s.close().await;
        Store::open(dir.path()).unwrap().close().await;
    }

    #[tokio::test]
    async fn ids_with_matches_whole_field_values_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.write(|tx| {
            tx.put("b", "e1", None, json!({"userId": "u1"}));
            tx.put("b", "e2", None, json!({"userId": "u10"}));
            tx.put("b", "e3", None, json!({"userId": "a\"b"}));
            tx.put("b", "e4", None, json!({"other": "u1", "userId": "u2"}));
            tx.put("b", "e5", None, json!({"userId": "u1"}));
            Ok(())
        })
        .await
        .unwrap();
        s.read(|st| {
            let mut ids = st.ids_with("b", "userId", "u1");
            ids.sort();
            assert_eq!(ids, ["e1", "e5"]);
            assert_eq!(st.ids_with("b", "userId", "a\"b"), ["e3"]);
            assert!(st.ids_with("b", "userId", "u").is_empty());
            assert!(st.ids_with("missing", "userId", "u1").is_empty());
            // Listing order is insertion order, whatever the map's order.
            let order: Vec<_> = st.items("b").map(|(id, _)| id.to_string()).collect();
            assert_eq!(order, ["e1", "e2", "e3", "e4", "e5"]);
        });
        s.close().await;
    }
}
