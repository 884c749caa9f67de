//! When to run a pass: triggers → debounce → one pass at a time → capped-backoff retries.
//!
//! Every event (database change, file change, timer, API call, leadership gained) is a
//! [`Trigger`]. Triggers that arrive within `debounce` of the first one coalesce into one
//! pass; a pass never starts while another runs; any number of triggers during a pass
//! schedule exactly one more. A full verify is due every `resync_interval`. A failed pass is
//! retried after a backoff that doubles up to `backoff_max`; a settled one (partial only because
//! of refusals met again) is not. The pass itself is a closure, so
//! this logic is tested with a fake pass and a paused clock.

use crate::reconcile::PassOutcome;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// What caused a pass to be requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TriggerSource {
    /// The agent started.
    Startup,
    /// The configuration was reloaded (SIGHUP or a change of the config file).
    Reload,
    /// The FreePBX database fingerprint changed (the poll).
    Database,
    /// A transaction that wrote a watched table committed (MariaDB's binary log).
    BinaryLog,
    /// A watched file changed.
    File,
    /// The periodic full verify.
    Timer,
    /// `POST …/sync`.
    Api,
    /// This agent just became the leader.
    Leadership,
    /// Retry of a failed pass.
    Retry,
    /// The quick iSymphony check found it wiped or reinstalled.
    IsymphonyCheck,
}

impl TriggerSource {
    /// Short name for logs and metrics.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TriggerSource::Startup => "startup",
            TriggerSource::Reload => "reload",
            TriggerSource::Database => "database",
            TriggerSource::BinaryLog => "binlog",
            TriggerSource::File => "file",
            TriggerSource::Timer => "timer",
            TriggerSource::Api => "api",
            TriggerSource::Leadership => "leadership",
            TriggerSource::Retry => "retry",
            TriggerSource::IsymphonyCheck => "isymphony_check",
        }
    }

    /// Does this source stand for a change on the FreePBX side (for change-to-converged latency)?
    pub(crate) fn is_change(self) -> bool {
        matches!(
            self,
            TriggerSource::Database | TriggerSource::BinaryLog | TriggerSource::File
        )
    }
}

/// A request for a pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trigger {
    pub(crate) source: TriggerSource,
    /// Ask for a full verify (re-read everything on the server side, ignore caches).
    pub(crate) full: bool,
    /// When the event happened (for change-to-converged latency).
    pub(crate) at: Instant,
}

impl Trigger {
    pub(crate) fn now(source: TriggerSource, full: bool) -> Trigger {
        Trigger {
            source,
            full,
            at: Instant::now(),
        }
    }
}

/// The pass the scheduler asks for: the union of the coalesced triggers.
#[derive(Debug, Clone)]
pub(crate) struct PassRequest {
    pub(crate) full: bool,
    pub(crate) sources: Vec<TriggerSource>,
    /// The earliest trigger that stands for a FreePBX-side change, if any.
    pub(crate) first_change: Option<Instant>,
}

/// What the scheduler does after a pass: mapped once from how the pass ended
/// ([`Next::after`]), or `Skipped` for a pass that did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Converged (or nothing to do): no retry.
    Converged,
    /// Did not run (e.g. this agent is standby): no retry, no verify reset.
    Skipped,
    /// Partial for a reason that the same request meets again (iSymphony refused the same
    /// resources as the pass before, nothing else failed): settled like a success, so the next
    /// change or the periodic verify runs the next pass, not a retry (see `known_gaps`).
    Settled,
    /// Failed or partial: retry after a backoff.
    Retry,
}

impl Next {
    /// The scheduler's answer to a pass that ended `outcome`; `settled`: partial only because
    /// of what the pass before met too.
    pub fn after(outcome: PassOutcome, settled: bool) -> Next {
        match outcome {
            _ if outcome.converged() => Next::Converged,
            _ if settled => Next::Settled,
            _ => Next::Retry,
        }
    }
}

/// The debounce of a window that only commits seen in the binary log opened (see
/// [`Pending::debounce`]); `[sync] debounce` still applies when it is shorter.
pub(crate) const COMMIT_DEBOUNCE: Duration = Duration::from_millis(10);

/// The timing knobs (hot-reloadable through [`SchedulerMsg::Configure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) debounce: Duration,
    pub(crate) resync_interval: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// How long shutdown waits for an in-flight pass before dropping it at its next await
    /// point (passes are crash-safe, so dropping one is a safe stop).
    pub(crate) shutdown_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            debounce: Duration::from_millis(50),
            resync_interval: Duration::from_secs(600),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(8),
        }
    }
}

/// Messages to a running scheduler.
#[derive(Debug)]
pub(crate) enum SchedulerMsg {
    Trigger(Trigger),
    Configure(Timing),
}

/// What the scheduler is doing, for the status resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchedulerView {
    pub(crate) running: bool,
    pub(crate) pending: bool,
    pub(crate) next_verify: Option<Instant>,
    pub(crate) retry_at: Option<Instant>,
}

/// A cloneable way to send triggers to the scheduler.
#[derive(Debug, Clone)]
pub(crate) struct TriggerSender(mpsc::UnboundedSender<SchedulerMsg>);

impl TriggerSender {
    pub(crate) fn trigger(&self, source: TriggerSource, full: bool) {
        // A closed channel means the scheduler has stopped: nothing left to trigger.
        let _ = self
            .0
            .send(SchedulerMsg::Trigger(Trigger::now(source, full)));
    }
    pub(crate) fn send(&self, msg: SchedulerMsg) {
        let _ = self.0.send(msg);
    }
}

/// A new channel for the scheduler.
pub(crate) fn channel() -> (TriggerSender, mpsc::UnboundedReceiver<SchedulerMsg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (TriggerSender(tx), rx)
}

#[derive(Debug, Default)]
struct Pending {
    full: bool,
    sources: Vec<TriggerSource>,
    first: Option<Instant>,
    first_change: Option<Instant>,
}

impl Pending {
    fn add(&mut self, t: Trigger) {
        self.full |= t.full;
        if !self.sources.contains(&t.source) {
            self.sources.push(t.source);
        }
        // The debounce window opens when the first trigger is seen.
        self.first.get_or_insert(Instant::now());
        if t.source.is_change() {
            self.first_change = Some(match self.first_change {
                Some(f) if f <= t.at => f,
                _ => t.at,
            });
        }
    }
    fn is_some(&self) -> bool {
        self.first.is_some()
    }
    /// How long this window waits for more triggers. The binary log reports each commit,
    /// exactly when it happens, so a window opened only by commits needs to wait just long
    /// enough to take in the rest of a burst of statements; a later commit schedules one
    /// more pass anyway (level-triggered), so a short window costs at most one extra pass.
    fn debounce(&self, configured: Duration) -> Duration {
        if !self.sources.is_empty() && self.sources.iter().all(|s| *s == TriggerSource::BinaryLog) {
            configured.min(COMMIT_DEBOUNCE)
        } else {
            configured
        }
    }
    fn take(&mut self) -> PassRequest {
        let p = std::mem::take(self);
        PassRequest {
            full: p.full,
            sources: p.sources,
            first_change: p.first_change,
        }
    }
}

/// Run the scheduler until `shutdown` is cancelled (or every sender is gone). Starts with no
/// pending pass; send a [`TriggerSource::Startup`] trigger to get the first one.
pub(crate) async fn run<F, Fut>(
    mut rx: mpsc::UnboundedReceiver<SchedulerMsg>,
    mut timing: Timing,
    shutdown: CancellationToken,
    view: Arc<Mutex<SchedulerView>>,
    mut pass: F,
) where
    F: FnMut(PassRequest) -> Fut,
    Fut: Future<Output = Next>,
{
    let mut pending = Pending::default();
    let mut next_verify = Instant::now() + timing.resync_interval;
    let mut backoff: Option<Duration> = None;
    let mut retry_at: Option<Instant> = None;
    let publish = |pending: &Pending, running: bool, next_verify: Instant, retry_at| {
        if let Ok(mut v) = view.lock() {
            *v = SchedulerView {
                running,
                pending: pending.is_some(),
                next_verify: Some(next_verify),
                retry_at,
            };
        }
    };

    loop {
        if shutdown.is_cancelled() {
            return;
        }
        publish(&pending, false, next_verify, retry_at);
        // Someone asked for this pass (Sync now, a reload after fixing the config): it does
        // not wait out the backoff of a failed one. The backoff itself stays.
        let asked = pending
            .sources
            .iter()
            .any(|s| matches!(s, TriggerSource::Api | TriggerSource::Reload));
        let due = pending.first.map(|first| {
            let d = first + pending.debounce(timing.debounce);
            match retry_at {
                Some(r) if r > d && !asked => r,
                _ => d,
            }
        });
        tokio::select! {
            msg = rx.recv() => match msg {
                None => return,
                Some(SchedulerMsg::Trigger(t)) => pending.add(t),
                Some(SchedulerMsg::Configure(t)) => {
                    if t.resync_interval != timing.resync_interval {
                        next_verify = Instant::now() + t.resync_interval;
                    }
                    timing = t;
                }
            },
            _ = sleep_until(next_verify) => {
                pending.add(Trigger::now(TriggerSource::Timer, true));
                // Re-armed when the full pass succeeds; until then do not fire again.
                next_verify = Instant::now() + timing.resync_interval;
            }
            _ = async { sleep_until(due.unwrap_or_else(Instant::now)).await }, if due.is_some() => {
                let req = pending.take();
                let ran = Ran {
                    full: req.full,
                    sources: req.sources.clone(),
                    first_change: req.first_change,
                };
                publish(&pending, true, next_verify, retry_at);
                let fut = pass(req);
                tokio::pin!(fut);
                let result = loop {
                    tokio::select! {
                        r = &mut fut => break Some(r),
                        msg = rx.recv() => match msg {
                            Some(SchedulerMsg::Trigger(t)) => pending.add(t),
                            Some(SchedulerMsg::Configure(t)) => timing = t,
                            // Senders gone: finish this pass, then stop.
                            None => break Some(fut.as_mut().await),
                        },
                        _ = shutdown.cancelled() => {
                            let grace = timing.shutdown_grace;
                            // Finish the pass if it ends within the grace; else drop it.
                            let _ = tokio::time::timeout(grace, fut.as_mut()).await;
                            return;
                        }
                    }
                };
                let (b, r, v) = (&mut backoff, &mut retry_at, &mut next_verify);
                settle(result, ran, &mut pending, &timing, b, r, v);
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

/// What a pass was asked to cover, kept to settle its result.
struct Ran {
    full: bool,
    sources: Vec<TriggerSource>,
    first_change: Option<Instant>,
}

/// Settle a pass's result: a success (or a settled partial pass) clears the backoff (and
/// re-arms the verify timer after a full pass); a failure (or a pass dropped) doubles the
/// backoff and queues a retry of what it covered.
fn settle(
    result: Option<Next>,
    ran: Ran,
    pending: &mut Pending,
    timing: &Timing,
    backoff: &mut Option<Duration>,
    retry_at: &mut Option<Instant>,
    next_verify: &mut Instant,
) {
    match result {
        Some(Next::Converged | Next::Settled) => {
            *backoff = None;
            *retry_at = None;
            if ran.full {
                *next_verify = Instant::now() + timing.resync_interval;
            }
        }
        Some(Next::Skipped) => {
            *retry_at = None;
        }
        Some(Next::Retry) | None => {
            let b = match *backoff {
                None => timing.backoff_min,
                Some(b) => (b * 2).min(timing.backoff_max),
            }
            .max(Duration::from_millis(1));
            *backoff = Some(b);
            *retry_at = Some(Instant::now() + b);
            // Retry what failed (keeps the full flag) plus whatever came since.
            pending.add(Trigger::now(TriggerSource::Retry, ran.full));
            for s in ran.sources {
                if s.is_change() && !pending.sources.contains(&s) {
                    pending.sources.push(s);
                }
            }
            // The changes it covered are still waiting to converge: their clock
            // keeps running from when they were detected.
            if let Some(t) = ran.first_change {
                pending.first_change = Some(match pending.first_change {
                    Some(f) if f <= t => f,
                    _ => t,
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
