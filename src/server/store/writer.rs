//! The store's writer thread: group commit, and the rollback of memory when a commit fails.

use super::{Msg, Op, State, Undo};
use rusqlite::{params, Connection};
use std::sync::{mpsc, Arc, RwLock};

type Ack = super::Ack;

/// Group commit: take everything queued, commit it in one transaction, then acknowledge all.
/// A failed commit is rolled back in memory (with whatever was queued after it) before the
/// acknowledgements go out, so no client sees an object that was never stored.
pub(super) fn run(mut conn: Connection, rx: mpsc::Receiver<Msg>, state: Arc<RwLock<State>>) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut batches = Vec::new();
        take(first, &mut batches, &mut closing);
        while closing.is_none() {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batches, &mut closing),
                Err(_) => break,
            }
        }
        if batches.is_empty() {
            continue;
        }
        let result = commit(&mut conn, &batches).map_err(std::sync::Arc::new);
        if let Err(e) = &result {
            tracing::error!(
                error = %e,
                writes = batches.len(),
                "store commit failed; the writes are undone in memory and answered with 500 \
                 (later writes are tried again)"
            );
            rollback(&rx, &state, &mut batches, &mut closing);
        }
        for (_, _, ack) in batches {
            let _ = ack.send(result.clone());
        }
    }
    // A clean shutdown leaves an empty WAL: the next start then checks one file only.
    if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
        tracing::warn!(error = %e, "store checkpoint at shutdown failed");
    }
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

fn take(m: Msg, batches: &mut Vec<(Vec<Op>, Undo, Ack)>, closing: &mut Option<CloseAck>) {
    match m {
        Msg::Batch(ops, undo, ack) => batches.push((ops, undo, ack)),
        Msg::Close(done) => *closing = Some(done),
    }
}

type CloseAck = tokio::sync::oneshot::Sender<()>;

/// Undo the failed group and everything queued after it, latest first, under the state lock.
/// Writers queue while holding that lock, so once it is taken nothing more can be queued on
/// top of the state being undone.
fn rollback(
    rx: &mpsc::Receiver<Msg>,
    state: &RwLock<State>,
    batches: &mut Vec<(Vec<Op>, Undo, Ack)>,
    closing: &mut Option<CloseAck>,
) {
    let mut st = state.write().unwrap_or_else(|e| e.into_inner());
    while let Ok(m) = rx.try_recv() {
        take(m, batches, closing);
    }
    for (_, undo, _) in batches.iter_mut().rev() {
        st.rollback(std::mem::take(undo));
    }
}

fn commit(conn: &mut Connection, batches: &[(Vec<Op>, Undo, Ack)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO objects (scope, id, seq, nkey, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM objects WHERE scope = ?1 AND id = ?2")?;
        let mut del_prefix =
            tx.prepare_cached("DELETE FROM objects WHERE substr(scope, 1, length(?1)) = ?1")?;
        for (ops, _, _) in batches {
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
