//! The store's group commit, led by a request (no writer thread), and the rollback of memory
//! when a commit fails.
//!
//! A write queues its SQLite operations. The first write that finds no commit running becomes
//! the leader: on its own thread, in the same poll (so a dropped request cannot stop it half
//! way), it takes everything queued, commits it in one transaction and acknowledges every write
//! of the group. Writes queued meanwhile form the next group, committed by a task the leader
//! spawns when it finishes. Before, a writer thread did this: every group cost two thread
//! hand-overs (to the writer and back), which bound 8 clients by wake-up latency, not by work.
//! The commit is one append of the group's records to the store log ([`super::log`]):
//! nothing is acknowledged before that `write` returned.

use super::log::{self, LogFile, Record};
use axum::body::Bytes;
use std::sync::{Arc, Mutex, RwLock};

/// A change to the log, queued in memory order.
#[derive(Debug)]
pub(super) enum Op {
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

/// The in-memory state, which takes back a write that could not be committed. A trait so
/// that this file needs nothing of the state but that (no import back up to `store`).
pub(super) trait Undoable {
    type Undo: Default;
    fn rollback(&mut self, undo: Self::Undo);
    /// Every object, as the records of a fresh log (to rewrite it).
    fn records(&self) -> Vec<Record<'_>>;
}

/// The commit's answer to one write of its group (one error, shared by all of them).
pub(super) type Outcome = Result<(), Arc<std::io::Error>>;
type Ack = tokio::sync::oneshot::Sender<Outcome>;

/// One queued write: its operations, its undo log and who waits for it (None: the leader,
/// which gets its outcome as [`Shared::lead`]'s return value).
pub(super) struct Pending<U> {
    pub ops: Vec<Op>,
    pub undo: U,
    pub ack: Option<Ack>,
}

/// Writes waiting for a commit, and whether a leader is committing.
pub(super) struct Queue<U> {
    pub pending: Vec<Pending<U>>,
    /// A leader (a request or its spawned successor) is committing or about to: the queue is
    /// its to take, and new writes only wait.
    pub leading: bool,
    /// Set by [`super::Store::close`]: writes are refused.
    pub closed: bool,
    /// [`super::Store::close`] waits here for the last leader to finish.
    pub idle: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<U> Default for Queue<U> {
    fn default() -> Self {
        Queue {
            pending: Vec::new(),
            leading: false,
            closed: false,
            idle: None,
        }
    }
}

/// What the store's handles, the leaders and their successors share.
pub(super) struct Shared<S: Undoable> {
    pub state: RwLock<S>,
    pub queue: Mutex<Queue<S::Undo>>,
    /// Only the leader uses it (there is one at a time); None once the store is closed.
    pub log: Mutex<Option<LogFile>>,
}

impl<S: Undoable + Send + Sync + 'static> Shared<S>
where
    S::Undo: Send + Sync,
{
    pub fn queue(&self) -> std::sync::MutexGuard<'_, Queue<S::Undo>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commit the queued group and acknowledge it; then hand the next group, if any, to a
    /// successor. Returns the outcome of the caller's own write (the one queued without an
    /// ack), Ok when there is none. Synchronous: the commit is one `write` (no fsync per
    /// commit), and running it here spares a thread hand-over per group.
    pub fn lead(self: &Arc<Self>) -> Outcome {
        let mut group = std::mem::take(&mut self.queue().pending);
        let result = {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            match log.as_mut() {
                Some(l) => {
                    let done = commit(l, &group).map_err(Arc::new);
                    if done.is_ok() && l.wants_rewrite() {
                        self.rewrite(l);
                    }
                    done
                }
                // Unreachable: close takes the log only once no write can queue.
                None => Err(Arc::new(std::io::Error::other("the store is closed"))),
            }
        };
        if let Err(e) = &result {
            tracing::error!(
                error = %e,
                writes = group.len(),
                "store commit failed; the writes are undone in memory and answered with 500 \
                 (later writes are tried again)"
            );
            self.rollback(&mut group);
        }
        let mut own = Ok(());
        for p in group {
            match p.ack {
                Some(ack) => {
                    let _ = ack.send(result.clone());
                }
                None => own = result.clone(),
            }
        }
        self.next();
        own
    }

    /// Rewrite the log from memory, when memory holds nothing uncommitted: the state lock
    /// keeps writers out, and with an empty queue every change in memory is in the log. With
    /// writes queued the rewrite waits for a later commit (they may still fail and be undone).
    fn rewrite(&self, log: &mut LogFile) {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        if !self.queue().pending.is_empty() {
            return;
        }
        match LogFile::rewrite(log.path(), st.records().into_iter()) {
            Ok(fresh) => *log = fresh,
            // The old log is intact (the new one is renamed over it only when complete).
            Err(e) => tracing::warn!(
                file = %log.path().display(), error = %e,
                "cannot rewrite the store log; it keeps growing until a rewrite succeeds"
            ),
        }
    }

    /// Give up the lead, or pass it to a successor task when writes queued meanwhile.
    fn next(self: &Arc<Self>) {
        let mut q = self.queue();
        if q.pending.is_empty() {
            q.leading = false;
            if let Some(idle) = q.idle.take() {
                let _ = idle.send(());
            }
            return;
        }
        drop(q);
        let successor = Successor(Some(self.clone()));
        match tokio::runtime::Handle::try_current() {
            // A task rather than a loop here: the leader's own client is answered now, and
            // the next group gathers while the task waits for its turn.
            Ok(rt) => drop(rt.spawn(async move { drop(successor) })),
            Err(_) => drop(successor),
        }
    }

    /// Undo the failed group and everything queued after it, latest first, under the state
    /// lock. Writers queue while holding that lock, so once it is taken nothing more can be
    /// queued on top of the state being undone.
    fn rollback(&self, group: &mut Vec<Pending<S::Undo>>) {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        group.append(&mut self.queue().pending);
        for p in group.iter_mut().rev() {
            st.rollback(std::mem::take(&mut p.undo));
        }
    }
}

/// The next leader. It commits when dropped, whether its task ran or was dropped unpolled (a
/// runtime shutting down): queued writes are never left without a leader.
struct Successor<S: Undoable + Send + Sync + 'static>(Option<Arc<Shared<S>>>)
where
    S::Undo: Send + Sync;

impl<S: Undoable + Send + Sync + 'static> Drop for Successor<S>
where
    S::Undo: Send + Sync,
{
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let _ = shared.lead();
        }
    }
}

fn commit<U>(log: &mut LogFile, group: &[Pending<U>]) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for op in group.iter().flat_map(|p| &p.ops) {
        let rec = match op {
            Op::Put {
                scope,
                id,
                seq,
                key,
                body,
            } => Record::Put {
                seq: *seq,
                scope,
                id,
                key: key.as_deref(),
                body,
            },
            Op::Del { scope, id } => Record::Del { scope, id },
            Op::DelPrefix(p) => Record::DelPrefix(p),
        };
        log::encode(&rec, &mut buf);
    }
    log::encode(&Record::Commit, &mut buf);
    log.append(&buf)
}
