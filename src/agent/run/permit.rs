//! The daemon's write permit for one pass (the [`WriteGate`] a pass asks before writing): the
//! writer lock's term the pass started in, confirmed on the lock connection before each write
//! stage, and a stop request (shutdown).

use crate::agent::leader::election::{LockError, LockLink};
use crate::reconcile::gate::{Denied, WriteGate};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Permission to write for one pass.
pub(crate) struct PassPermit {
    /// The lock and the term the pass started in; `None` when no lock applies (a snapshot
    /// file is the source, so no other agent can compete).
    lock: Option<(Arc<LockLink>, u64)>,
    /// `Some(why)` once the pass must stop writing (shutdown).
    stop: watch::Receiver<Option<String>>,
    /// How long a confirmation may take.
    within: Duration,
    /// Operations the pass was allowed to start (`revoked` is asked once before each).
    started: AtomicUsize,
}

impl PassPermit {
    pub(crate) fn new(
        lock: Option<(Arc<LockLink>, u64)>,
        stop: watch::Receiver<Option<String>>,
        within: Duration,
    ) -> PassPermit {
        PassPermit {
            lock,
            stop,
            within,
            started: AtomicUsize::new(0),
        }
    }

    /// Operations started so far (for the summary of a pass dropped at shutdown).
    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn refused(&self) -> Option<Denied> {
        if let Some(why) = self.stop.borrow().clone() {
            return Some(Denied::Stopping(why));
        }
        match &self.lock {
            Some((link, term)) if link.term() != Some(*term) => {
                Some(Denied::Lock(Arc::new(LockError::Lost)))
            }
            _ => None,
        }
    }
}

impl WriteGate for PassPermit {
    fn confirm(&self) -> BoxFuture<'_, Result<(), Denied>> {
        Box::pin(async move {
            if let Some(why) = self.refused() {
                return Err(why);
            }
            if let Some((link, term)) = &self.lock {
                link.confirm(*term, self.within)
                    .await
                    .map_err(|e| Denied::Lock(Arc::new(e)))?;
            }
            Ok(())
        })
    }

    fn revoked(&self) -> Option<Denied> {
        let r = self.refused();
        if r.is_none() {
            self.started.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
}
