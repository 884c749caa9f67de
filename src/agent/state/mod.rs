//! What the agent knows about itself: the status document, the pass history, the metrics.
//!
//! The daemon records each pass, reachability of both sides, reloads and HTTP requests into one
//! [`AgentState`]; the agent resources (`agent/http/resources.rs`, `agent/http/page/`) render it
//! as JSON ([`status`]), as the status page (with [`history`]), or as Prometheus metrics (kept
//! by [`metrics`] with `prometheus-client`).

pub(crate) mod history;
pub(crate) mod metrics;
pub(crate) mod readiness;
pub mod status;

use crate::agent::leader::election::Role;
use history::History;
use metrics::Metrics;
use status::{AgentStatus, CheckRecord, Finding, LockCheck, PassRecord, Reachability};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug)]
struct Inner {
    status: AgentStatus,
    metrics: Metrics,
    history: History,
    /// The Asterisk backend's facts, when the Live API follows AMI ([`AgentState::attach_ami`]).
    ami: Option<(
        Arc<crate::live::backend::Shared>,
        crate::live::asterisk::EventRate,
    )>,
}

impl Inner {
    /// The status document with the AMI figures of this moment.
    fn current(&mut self) -> AgentStatus {
        let mut st = self.status.clone();
        if let Some((shared, rate)) = &mut self.ami {
            let mut stats = shared.read(crate::live::asterisk::AmiStats::of);
            rate.fill(&mut stats);
            st.ami = Some(stats);
        }
        st
    }
}

/// The agent's observable state, shared by the daemon and the HTTP resources.
#[derive(Debug)]
pub struct AgentState {
    inner: Mutex<Inner>,
    /// Remembers a target without a usable Live API (readiness asked once).
    pub(crate) readiness: crate::explain::readiness::Tracker,
}

impl Default for AgentState {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentState {
    pub fn new() -> AgentState {
        AgentState {
            inner: Mutex::new(Inner {
                status: AgentStatus {
                    version: env!("CARGO_PKG_VERSION"),
                    role: Role::Standby,
                    lock: None,
                    started: SystemTime::now(),
                    config_file: None,
                    config_loaded: None,
                    last_reload_error: None,
                    pass_running: false,
                    pass_pending: false,
                    last_pass: None,
                    last_success: None,
                    last_error: None,
                    counts_by_kind: BTreeMap::new(),
                    freepbx: Reachability::default(),
                    isymphony: Reachability::default(),
                    isymphony_unreadable: Vec::new(),
                    isymphony_check: None,
                    next_verify: None,
                    next_retry: None,
                    target_change: None,
                    lock_check: Default::default(),
                    ami: None,
                    readiness: None,
                },
                metrics: Metrics::new(),
                history: Default::default(),
                ami: None,
            }),
            readiness: Default::default(),
        }
    }

    /// Record what the last readiness check found.
    pub(crate) fn set_readiness(&self, r: crate::explain::readiness::Readiness) {
        self.with(|i| i.status.readiness = Some(r))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// A copy of the status document.
    pub fn status(&self) -> AgentStatus {
        self.with(|i| i.current())
    }

    /// A copy of the status document and the retained history (the status page).
    pub(crate) fn status_and_history(&self) -> (AgentStatus, History) {
        self.with(|i| (i.current(), i.history.clone()))
    }

    /// Show the Asterisk backend's AMI connection on the status page and in the metrics
    /// (`isymphony_sync_ami_connected`, `isymphony_sync_ami_events_total`,
    /// `isymphony_sync_live_calls`), from its facts at each read. Call once, where the
    /// backend is started.
    pub fn attach_ami(&self, shared: Arc<crate::live::backend::Shared>) {
        self.with(|i| {
            i.metrics.attach_ami(shared.clone());
            i.ami = Some((shared, Default::default()));
        })
    }

    pub(crate) fn set_role(&self, role: Role, lock: Option<String>) {
        self.with(|i| {
            i.status.role = role;
            i.status.lock = lock;
        })
    }

    pub(crate) fn set_target_change(&self, what: String) {
        let at = crate::agent::http::page::localtime::format(SystemTime::now());
        self.with(|i| i.status.target_change = Some(format!("at {at}: {what}")))
    }

    pub(crate) fn set_lock_check(&self, check: LockCheck) {
        self.with(|i| i.status.lock_check = check)
    }

    pub(crate) fn set_config(&self, file: Option<String>) {
        self.with(|i| {
            i.status.config_file = file;
            i.status.config_loaded = Some(SystemTime::now());
            i.status.last_reload_error = None;
            i.metrics.reload(true);
        })
    }

    pub(crate) fn reload_failed(&self, error: String) {
        self.with(|i| {
            i.status.last_reload_error = Some(error);
            i.metrics.reload(false);
        })
    }

    pub(crate) fn set_schedule(
        &self,
        running: bool,
        pending: bool,
        next_verify: Option<SystemTime>,
        next_retry: Option<SystemTime>,
    ) {
        self.with(|i| {
            i.status.pass_running = running;
            i.status.pass_pending = pending;
            i.status.next_verify = next_verify;
            i.status.next_retry = next_retry;
        })
    }

    pub(crate) fn set_freepbx(&self, ok: bool, error: Option<String>) {
        self.with(|i| i.status.freepbx.set(ok, error))
    }

    pub(crate) fn set_isymphony(&self, ok: bool, error: Option<String>) {
        self.with(|i| i.status.isymphony.set(ok, error))
    }

    /// What the last pass could not read on the iSymphony side.
    pub(crate) fn set_unreadable(&self, what: Vec<String>) {
        self.with(|i| i.status.isymphony_unreadable = what)
    }

    /// Record a result of the quick iSymphony check (`None`: all as expected); `triggered`:
    /// a full pass was started for this finding.
    pub(crate) fn isymphony_checked(&self, found: Option<String>, triggered: bool) {
        self.with(|i| {
            let now = SystemTime::now();
            let mut last = i.status.isymphony_check.take().and_then(|c| c.last_finding);
            if triggered {
                i.metrics.isymphony_reset();
            }
            if let Some(f) = &found {
                if triggered || last.as_ref().map_or(true, |l| l.found != *f) {
                    last = Some(Finding {
                        at: now,
                        found: f.clone(),
                        full_pass_triggered: triggered,
                    });
                }
            }
            i.status.isymphony_check = Some(CheckRecord {
                at: now,
                found: found.unwrap_or_else(|| "ok".into()),
                last_finding: last,
            });
        })
    }

    pub(crate) fn db_polled(&self, ok: bool) {
        self.with(|i| i.metrics.db_poll(ok))
    }

    /// Count the change detection's work since the last call (deltas of its counters).
    pub(crate) fn db_detection(&self, stamps: u64, checksums: u64, tables: u64) {
        if stamps + checksums + tables > 0 {
            self.with(|i| i.metrics.db_detection(stamps, checksums, tables))
        }
    }

    /// Record a finished pass; `change_latency` is the time from the first FreePBX-side
    /// change it covered to its successful end.
    /// Whether change detection follows the binary log now (else it polls).
    pub(crate) fn set_change_source(&self, binlog: bool) {
        self.with(|i| i.metrics.change_source(binlog))
    }

    /// The binary log stream broke (the poll took over).
    pub(crate) fn binlog_broke(&self) {
        self.with(|i| i.metrics.binlog_break())
    }

    pub(crate) fn record_pass(&self, rec: PassRecord, change_latency: Option<Duration>) {
        self.with(|i| {
            let secs = rec
                .finished
                .duration_since(rec.started)
                .unwrap_or_default()
                .as_secs_f64();
            let converged = rec
                .result
                .converged()
                .then(|| change_latency.map(|l| l.as_secs_f64()))
                .flatten();
            i.metrics.pass(rec.result.as_str(), secs, converged);
            i.history.record(&rec, change_latency);
            if rec.result.converged() {
                i.status.last_success = Some(rec.finished);
            } else {
                i.status.last_error = rec.error.clone();
            }
            if !rec.counts_by_kind.is_empty() {
                i.status.counts_by_kind = rec.counts_by_kind.clone();
            }
            i.status.last_pass = Some(rec);
        })
    }

    /// Count one HTTP request answered by the embedded endpoint.
    pub(crate) fn http_request(&self, method: &str, status: u16) {
        self.with(|i| i.metrics.http_request(method, status))
    }

    /// The Prometheus exposition (OpenMetrics text, [`crate::agent::state::metrics::CONTENT_TYPE`]).
    pub fn metrics(&self) -> String {
        self.with(|i| i.metrics.encode(&i.status))
    }
}
