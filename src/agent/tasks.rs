//! The daemon's tasks and their one lifecycle (pingora's shutdown watch, with tokio-util's
//! `CancellationToken` and `TaskTracker`).
//!
//! Every long-lived task of the daemon is spawned through [`Tasks::spawn`] with a name and a
//! [`Phase`]; it takes that phase's token (or a child of it, when the daemon restarts the task
//! on its own, as the database poll on a reload) and returns when it is cancelled. On
//! shutdown [`Tasks::shutdown`] cancels the phases in order and joins each one within a bounded
//! wait, naming in the log any task that did not stop. The phases exist because a pass must
//! keep the writer lock until it has ended: the lock's holder stops only after the pass has.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// When a task is stopped on shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// First: the triggers and the scheduler with its pass (which gets its grace).
    Work,
    /// After every [`Phase::Work`] task has ended: what a pass needs until its end (the
    /// election holding the writer lock) and what reports on it (role, watchdog).
    Lock,
}

/// One phase: its token and the tasks spawned in it.
#[derive(Clone, Default)]
struct Group {
    token: CancellationToken,
    tracker: TaskTracker,
}

/// The daemon's tasks (cheap to clone: every clone is the same set).
#[derive(Clone, Default)]
pub(crate) struct Tasks {
    work: Group,
    lock: Group,
    /// Why the daemon stops (`SIGTERM`, …), set once before the first token is cancelled.
    reason: Arc<OnceLock<String>>,
    /// The tasks still running (name and phase), by a number of their own.
    running: Running,
    next: Arc<AtomicU64>,
}

type Running = Arc<Mutex<BTreeMap<u64, (&'static str, Phase)>>>;

/// Removes a task's name when its future ends or is dropped (also on a panic).
struct Named {
    id: u64,
    running: Running,
}

impl Drop for Named {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// What a task is told about shutdown: its token, and why (for the words of its log line).
#[derive(Clone)]
pub(crate) struct Shutdown {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

impl Shutdown {
    /// Resolves once the task must stop, with the reason.
    pub(crate) async fn requested(&self) -> String {
        self.token.cancelled().await;
        self.reason()
    }

    /// The reason given to [`Tasks::shutdown`] (a generic one if stopped otherwise).
    pub(crate) fn reason(&self) -> String {
        self.reason
            .get()
            .cloned()
            .unwrap_or_else(|| "the agent is shutting down".to_string())
    }

    #[cfg(test)]
    /// The token itself, for loops that only need to know "stop now".
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Tasks {
    pub(crate) fn new() -> Tasks {
        Tasks::default()
    }

    fn group(&self, phase: Phase) -> &Group {
        match phase {
            Phase::Work => &self.work,
            Phase::Lock => &self.lock,
        }
    }

    /// The shutdown signal of `phase`.
    pub(crate) fn shutdown_signal(&self, phase: Phase) -> Shutdown {
        Shutdown {
            token: self.group(phase).token.clone(),
            reason: self.reason.clone(),
        }
    }

    /// The token of `phase`, for loops that only need to know "stop now".
    pub(crate) fn token(&self, phase: Phase) -> CancellationToken {
        self.group(phase).token.clone()
    }

    /// A token of its own for a task restarted apart from the others; cancelled with `phase`.
    pub(crate) fn child_token(&self, phase: Phase) -> CancellationToken {
        self.group(phase).token.child_token()
    }

    /// Spawn `fut` as the task `name` of `phase`; it must return once that phase's token (or
    /// a child of it that it was given) is cancelled.
    pub(crate) fn spawn<F>(&self, name: &'static str, phase: Phase, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (name, phase));
        let guard = Named {
            id,
            running: self.running.clone(),
        };
        self.group(phase).tracker.spawn(async move {
            let _guard = guard;
            fut.await
        })
    }

    #[cfg(test)]
    /// How many of the tasks are still running.
    pub(crate) fn len(&self) -> usize {
        self.work.tracker.len() + self.lock.tracker.len()
    }

    #[cfg(test)]
    /// Whether every task has ended.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    /// The names of the tasks still running, sorted (a name appears once per task).
    pub(crate) fn running(&self) -> Vec<&'static str> {
        self.running_in(None)
    }

    fn running_in(&self, phase: Option<Phase>) -> Vec<&'static str> {
        let mut v: Vec<_> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|(_, p)| phase.map_or(true, |want| *p == want))
            .map(|(name, _)| *name)
            .collect();
        v.sort_unstable();
        v
    }

    /// Stop every task for `reason`: cancel [`Phase::Work`] and wait for its tasks up to
    /// `work_wait`, then the same for [`Phase::Lock`] with `lock_wait`. Returns the names of
    /// the tasks that did not stop in time (each logged as a warning); they are left to the
    /// runtime's end.
    pub(crate) async fn shutdown(
        &self,
        reason: &str,
        work_wait: Duration,
        lock_wait: Duration,
    ) -> Vec<&'static str> {
        let _ = self.reason.set(reason.to_string());
        let mut late = Vec::new();
        for (phase, wait) in [(Phase::Work, work_wait), (Phase::Lock, lock_wait)] {
            let g = self.group(phase);
            g.token.cancel();
            g.tracker.close();
            if tokio::time::timeout(wait, g.tracker.wait()).await.is_err() {
                let names = self.running_in(Some(phase));
                for name in &names {
                    tracing::warn!(task = name, phase = ?phase, "task did not stop within {wait:?}");
                }
                late.extend(names);
            }
        }
        late.sort_unstable();
        late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lock_phase_outlives_the_work_phase_and_all_are_joined() {
        let tasks = Tasks::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (o1, o2) = (order.clone(), order.clone());
        let work = tasks.shutdown_signal(Phase::Work);
        tasks.spawn("work", Phase::Work, async move {
            let why = work.requested().await;
            // A pass finishing within its grace.
            tokio::time::sleep(Duration::from_millis(50)).await;
            o1.lock().unwrap().push(format!("work: {why}"));
        });
        let lock = tasks.shutdown_signal(Phase::Lock);
        tasks.spawn("lock", Phase::Lock, async move {
            lock.token().cancelled().await;
            o2.lock().unwrap().push("lock".to_string());
        });
        let child = tasks.child_token(Phase::Work);
        tasks.spawn("child", Phase::Work, async move { child.cancelled().await });
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks.running(), vec!["child", "lock", "work"]);
        let late = tasks
            .shutdown("SIGTERM", Duration::from_secs(5), Duration::from_secs(5))
            .await;
        assert!(late.is_empty(), "{late:?}");
        assert!(tasks.is_empty() && tasks.running().is_empty());
        assert_eq!(*order.lock().unwrap(), vec!["work: SIGTERM", "lock"]);
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_signal_is_named_and_the_wait_is_bounded() {
        let tasks = Tasks::new();
        tasks.spawn("deaf", Phase::Work, std::future::pending::<()>());
        tasks.spawn("obedient", Phase::Lock, {
            let s = tasks.shutdown_signal(Phase::Lock);
            async move { s.token().cancelled().await }
        });
        let t0 = std::time::Instant::now();
        let late = tasks
            .shutdown("test", Duration::from_millis(100), Duration::from_secs(5))
            .await;
        assert_eq!(late, vec!["deaf"]);
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(tasks.running(), vec!["deaf"]);
    }
}
