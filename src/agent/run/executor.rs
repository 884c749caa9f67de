//! Runs reconcile passes on a thread of their own.
//!
//! The pass future (`reconcile::run_pass`) is not provably `Send` to today's compiler (a
//! higher-ranked lifetime in its apply stream), so it cannot be `tokio::spawn`ed or awaited
//! inside a `Send` task. The executor owns one thread that drives a `LocalSet` on the
//! program's one runtime (its handle: timers and I/O stay with that runtime's drivers);
//! callers get a `Send` future back. Dropping that future cancels the pass at its
//! next await point (passes are crash-safe): the last resort of shutdown and loss of
//! leadership, after the pass's write gate has asked it to stop (see `agent::run::pass`).

use crate::config::Config;
use crate::reconcile::gate::WriteGate;
use crate::reconcile::{self, PassOptions, PassReport, ReconcileError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Reply = Result<PassReport, ReconcileError>;

struct Job {
    cfg: Arc<Config>,
    opts: PassOptions,
    gate: Option<Arc<dyn WriteGate>>,
    reply: oneshot::Sender<Reply>,
    cancel: oneshot::Receiver<()>,
}

/// A handle to the pass thread (cheap to clone).
#[derive(Clone)]
pub(crate) struct PassExecutor {
    tx: mpsc::UnboundedSender<Job>,
}

impl PassExecutor {
    /// Start the thread (from within the runtime). It ends when every handle is dropped.
    pub(crate) fn start() -> std::io::Result<PassExecutor> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let rt = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("isymphony-sync-pass".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                rt.block_on(local.run_until(async move {
                    while let Some(job) = rx.recv().await {
                        tokio::task::spawn_local(async move {
                            let Job {
                                cfg,
                                opts,
                                gate,
                                reply,
                                cancel,
                            } = job;
                            let pass = reconcile::run_pass_gated(&cfg, &opts, gate.as_deref());
                            tokio::select! {
                                r = pass => { let _ = reply.send(r); }
                                // The caller went away: drop the pass here.
                                _ = cancel => {}
                            }
                        });
                    }
                }));
            })?;
        Ok(PassExecutor { tx })
    }

    /// Run one pass, writing only while `gate` allows; `None` when the executor is gone.
    /// Dropping the returned future cancels the pass.
    pub(crate) async fn run(
        &self,
        cfg: Arc<Config>,
        opts: PassOptions,
        gate: Option<Arc<dyn WriteGate>>,
    ) -> Option<Reply> {
        let (cancel_tx, cancel) = oneshot::channel();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                cfg,
                opts,
                gate,
                reply,
                cancel,
            })
            .ok()?;
        let r = rx.await.ok();
        drop(cancel_tx);
        r
    }
}
