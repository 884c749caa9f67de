//! One pass of the daemon: run it on the [`PassExecutor`] under a [`PassPermit`], stop it
//! cleanly when leadership is lost or the agent shuts down, and turn the outcome into the
//! status record, the log line and the scheduler's answer.
//!
//! Stopping is cooperative first: the gate refuses the next write stage and every operation
//! not yet started, so the pass returns its report (what it applied, why it stopped) and the
//! log line says so. Only a pass that does not return within [`STOP_WAIT`] after that (an
//! operation still in flight) is dropped, and its line then counts what it had started.

use super::executor::PassExecutor;
use super::known_gaps::{self, KnownGaps};
use super::permit::PassPermit;
use super::scheduler::{Next, PassRequest};
use crate::agent::leader::election::{LockLink, Role, LOCK_LOST};
use crate::agent::notify::Notifier;
use crate::agent::state::status::PassRecord;
use crate::agent::state::AgentState;
use crate::agent::tasks::Shutdown;
use crate::agent::trigger::wipecheck;
use crate::config::Config;
use crate::model::Kind;
use crate::reconcile::{PassOptions, PassOutcome, PassReport, ReconcileError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How long shutdown lets a pass run on before asking it to stop.
pub(crate) const PASS_GRACE: Duration = Duration::from_secs(4);
/// How long a pass asked to stop may take to return its report before it is dropped.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(1);
/// Upper bound on a confirmation of the writer lock.
const CONFIRM_WITHIN: Duration = Duration::from_secs(6);

/// How the pass's future ended: it returned, or it had to be dropped.
enum Ending {
    /// The pass returned (boxed: a report is large, the other variants small).
    Returned(Box<Result<PassReport, ReconcileError>>),
    /// The pass was dropped after it was asked to stop; it had started `started` operations.
    Dropped { why: String, started: usize },
    /// The executor is gone.
    Gone,
}

/// What every pass of the daemon shares.
#[derive(Clone)]
pub(crate) struct PassRunner {
    pub(crate) state: Arc<AgentState>,
    pub(crate) exec: PassExecutor,
    pub(crate) notifier: Option<Arc<Notifier>>,
    pub(crate) link: Arc<LockLink>,
    pub(crate) role: watch::Receiver<Role>,
    /// The daemon's shutdown (`SIGTERM`, `SIGINT`), with its reason.
    pub(crate) shutdown: Shutdown,
    /// Where the last pass went, for the quick check of a wiped iSymphony.
    pub(crate) last_target: wipecheck::SharedTarget,
    /// What the last pass could not read on the iSymphony side.
    pub(crate) known_gaps: Arc<KnownGaps>,
}

impl PassRunner {
    /// Run the pass `req` asks for with `cfg`, as leader only.
    pub(crate) async fn run(&self, cfg: Arc<Config>, req: PassRequest) -> Next {
        if *self.role.borrow() != Role::Leader {
            tracing::debug!("standby: pass skipped");
            return Next::Skipped;
        }
        // A snapshot file as the source: no database, no lock, no competitor.
        let lock = if cfg.freepbx.snapshot.is_some() {
            None
        } else {
            match self.link.term() {
                Some(t) => Some((self.link.clone(), t)),
                None => {
                    tracing::debug!("standby: pass skipped");
                    return Next::Skipped;
                }
            }
        };
        let (stop_tx, stop_rx) = watch::channel(None);
        let gate = Arc::new(PassPermit::new(lock, stop_rx, CONFIRM_WITHIN));
        let started = SystemTime::now();
        let opts = PassOptions {
            full: req.full,
            // Logged here, once per change of the set (see known_gaps).
            quiet_gaps: true,
            keep_open: true,
            ..PassOptions::default()
        };
        tracing::debug!(full = req.full, "pass started");
        let cfg = keep_database_https(cfg, &self.last_target);
        let run = self.exec.run(cfg.clone(), opts, Some(gate.clone()));
        tokio::pin!(run);
        let mut role = self.role.clone();
        // (The watch guard is dropped inside its branch: it must not live across awaits.)
        let lost = async { drop(role.wait_for(|r| *r != Role::Leader).await) };
        let why = tokio::select! {
            r = &mut run => Ok(r),
            _ = lost => Err(LOCK_LOST.to_string()),
            why = self.shutdown.requested() => {
                // Shutdown lets the pass finish within the grace, then asks it to stop.
                match tokio::time::timeout(PASS_GRACE, &mut run).await {
                    Ok(r) => Ok(r),
                    Err(_) => Err(why),
                }
            }
        };
        let mut ending = match why {
            Ok(Some(r)) => Ending::Returned(Box::new(r)),
            Ok(None) => Ending::Gone,
            Err(why) => {
                stop_tx.send_replace(Some(why.clone()));
                match tokio::time::timeout(STOP_WAIT, &mut run).await {
                    Ok(Some(r)) => Ending::Returned(Box::new(r)),
                    Ok(None) => Ending::Gone,
                    Err(_) => Ending::Dropped {
                        why,
                        started: gate.started(),
                    },
                }
            }
        };
        note_target(&mut ending, &self.last_target, &self.state);
        if let Ending::Returned(done) = &ending {
            if let Ok(r) = done.as_ref().as_ref() {
                crate::agent::state::readiness::after_pass(&self.state, &cfg, r, req.full).await;
            }
        }
        record(
            (&self.state, &self.known_gaps),
            self.notifier.as_deref(),
            &req,
            started,
            ending,
        )
    }
}

/// Once a pass went to an https target that cxpanel's settings named, those settings cannot
/// turn the next ones into plain http (see `source::resolve_target`).
fn keep_database_https(cfg: Arc<Config>, last: &wipecheck::SharedTarget) -> Arc<Config> {
    let seen = last_target(last).is_some_and(|t| t.from_database && t.url.starts_with("https:"));
    if !seen || cfg.isymphony.database_https_seen {
        return cfg;
    }
    let mut c = (*cfg).clone();
    c.isymphony.database_https_seen = true;
    Arc::new(c)
}

fn last_target(last: &wipecheck::SharedTarget) -> Option<crate::reconcile::source::Target> {
    match last.lock() {
        Ok(g) => g.target.clone(),
        Err(p) => p.into_inner().target.clone(),
    }
}

/// The host part of a URL (`pbx.example`, `10.0.0.5`), or the URL when it does not parse.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| crate::text::redact_url(url))
}

/// A pass that went to another host than the last one, both named by cxpanel's settings in
/// the database: whoever can write those settings chooses where the agent writes, so the
/// change is warned about (log, and the status page with the pass's warnings).
fn warn_database_host_change(r: &mut PassReport, last: &wipecheck::SharedTarget) -> Option<String> {
    let (Some(prev), Some(now)) = (last_target(last), r.resolved.as_ref()) else {
        return None;
    };
    if !(prev.from_database && now.from_database) {
        return None;
    }
    let (was, is) = (host_of(&prev.url), host_of(&now.url));
    if was == is {
        return None;
    }
    let w = format!(
        "the iSymphony host named by cxpanel's settings in FreePBX's database changed from \
         {was} to {is}, and this pass went there; if nobody changed Admin > iSymphonyV3 > \
         Server API Connection Settings, check who can write that database, and set \
         [isymphony] url to pin the target"
    );
    tracing::warn!("{w}");
    r.plan.warnings.push(w.clone());
    Some(w)
}

/// Tells the quick iSymphony check where a pass that returned went, and warns when cxpanel's
/// settings moved it to another host.
fn note_target(ending: &mut Ending, last_target: &wipecheck::SharedTarget, state: &AgentState) {
    let Ending::Returned(r) = ending else {
        return;
    };
    if let Some(w) = r
        .as_mut()
        .as_mut()
        .ok()
        .and_then(|report| warn_database_host_change(report, last_target))
    {
        // Kept on the status page after later passes, as the quick check's finding is.
        state.set_target_change(w);
    }
    let target = r.as_ref().as_ref().ok().and_then(|r| r.resolved.clone());
    wipecheck::record_target(last_target, target);
}

/// The record's fields for a pass that ran to the end (possibly with failures). What it could not
/// read is logged when it differs from the last pass's; a partial pass that met the same
/// refusals again is settled.
fn completed(state: &AgentState, known: &KnownGaps, r: &PassReport, full: bool) -> Fields {
    for op in &r.plan.ops {
        tracing::debug!("write: {}", op.describe());
    }
    let change = known.record(r, full);
    known_gaps::log(r, change);
    let unreadable = known_gaps::for_status(r);
    let ok = r.is_complete();
    state.set_freepbx(true, None);
    if ok {
        state.set_isymphony(true, None);
    } else {
        state.set_isymphony(r.failed == 0, r.errors.first().cloned());
    }
    state.set_unreadable(unreadable.clone());
    Fields {
        result: r.outcome(),
        summary: r.summary_line(),
        applied: r.applied as u64,
        failed: r.failed as u64,
        requests: r.requests,
        warnings: warnings(r, &unreadable),
        counts: counts(r),
        error: r
            .errors
            .first()
            .cloned()
            .or_else(|| r.refused.clone())
            .or_else(|| unreadable.first().cloned()),
        settled: !ok && known_gaps::settles(r, change),
    }
}

/// What the status page lists as warnings of a pass: valve refusals, the plan's warnings
/// (licence holds, kinds frozen because a FreePBX source was unreadable) and unreadable
/// iSymphony resources (as the status lists them).
fn warnings(r: &PassReport, unreadable: &[String]) -> Vec<String> {
    let valve = r
        .refused
        .iter()
        .map(|why| format!("safety valve withheld {} deletions: {why}", r.withheld));
    valve
        .chain(r.plan.warnings.iter().cloned())
        .chain(unreadable.iter().map(|u| format!("unreadable: {u}")))
        .collect()
}

fn counts(r: &PassReport) -> BTreeMap<Kind, u64> {
    r.counts_by_kind
        .iter()
        .map(|(k, v)| (*k, *v as u64))
        .collect()
}

struct Fields {
    result: PassOutcome,
    summary: String,
    applied: u64,
    failed: u64,
    requests: crate::api::client::RequestCounts,
    warnings: Vec<String>,
    counts: BTreeMap<Kind, u64>,
    error: Option<String>,
    /// Partial only because of refusals met again: no retry (see known_gaps).
    settled: bool,
}

fn failed(summary: String, error: String) -> Fields {
    Fields {
        result: PassOutcome::Failed,
        summary,
        applied: 0,
        failed: 0,
        requests: Default::default(),
        warnings: Vec::new(),
        counts: BTreeMap::new(),
        error: Some(error),
        settled: false,
    }
}

fn fields((state, known): (&AgentState, &KnownGaps), full: bool, ending: Ending) -> Fields {
    let r = match ending {
        Ending::Returned(r) => *r,
        Ending::Gone => {
            return failed(
                "stopped: the agent is shutting down".into(),
                "the pass executor has stopped".into(),
            )
        }
        Ending::Dropped { why, started } => {
            return failed(
                format!(
                    "stopped: {why}; {started} operations had been started, the rest is left to the next pass"
                ),
                why,
            )
        }
    };
    match r {
        Ok(r) => completed(state, known, &r, full),
        Err(ReconcileError::Stopped { reason, report }) => Fields {
            result: PassOutcome::Failed,
            summary: format!("stopped: {reason}; {}", report.summary_line()),
            applied: report.applied as u64,
            failed: report.failed as u64,
            requests: report.requests,
            warnings: warnings(&report, &report.unreadable),
            counts: counts(&report),
            error: Some(reason.to_string()),
            settled: false,
        },
        Err(e) => {
            let msg = e.to_string();
            match &e {
                ReconcileError::FreepbxUnreadable(_) => state.set_freepbx(false, Some(msg.clone())),
                ReconcileError::IsymphonyUnreachable(_) => {
                    state.set_freepbx(true, None);
                    state.set_isymphony(false, Some(msg.clone()));
                }
                ReconcileError::IsymphonyRefused(_) => {
                    state.set_freepbx(true, None);
                    state.set_isymphony(true, None);
                }
                _ => {}
            }
            failed(format!("failed: {msg}"), msg)
        }
    }
}

/// Record how the pass ended: the status record, the log line and the scheduler's answer.
fn record(
    (state, known): (&AgentState, &KnownGaps),
    notifier: Option<&Notifier>,
    req: &PassRequest,
    started: SystemTime,
    ending: Ending,
) -> Next {
    let finished = SystemTime::now();
    let triggers: Vec<&str> = req.sources.iter().map(|s| s.as_str()).collect();
    let f = fields((state, known), req.full, ending);
    let secs = finished
        .duration_since(started)
        .unwrap_or_default()
        .as_secs_f64();
    let mut counts_text: Vec<String> = f.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // By name, as the summary has always listed them.
    counts_text.sort();
    let (result, summary, settled) = (f.result, &f.summary, f.settled);
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                result = result.as_str(),
                triggers = %triggers.join(","),
                full = req.full,
                applied = f.applied,
                failed = f.failed,
                counts = %counts_text.join(" "),
                seconds = secs,
                "pass: {summary}"
            )
        };
    }
    // A settled partial pass was warned about when its refusals appeared.
    if result.converged() || settled {
        line!(info)
    } else {
        line!(warn)
    }
    if let Some(n) = notifier {
        let _ = n.status(&format!("{}: {summary}", result.as_str()));
    }
    let latency = req
        .first_change
        .filter(|_| result.converged())
        .map(|t| t.elapsed());
    state.record_pass(
        PassRecord {
            started,
            finished,
            result,
            full: req.full,
            triggers: req.sources.clone(),
            summary: f.summary,
            applied: f.applied,
            failed: f.failed,
            requests: f.requests,
            warnings: f.warnings,
            counts_by_kind: f.counts,
            error: f.error,
        },
        latency,
    );
    Next::after(result, settled)
}
