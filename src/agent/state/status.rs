//! What the agent knows about itself: the status document and the Prometheus metrics.
//!
//! The daemon records each pass, reachability of both sides, reloads and HTTP requests into one
//! [`AgentState`]; the agent resources (`agent/http/resources.rs`, `agent/http/page/`) render it as JSON,
//! as the status page, or as Prometheus metrics (kept by `agent::state::metrics` with
//! `prometheus-client`).

use crate::agent::leader::election::Role;
use crate::agent::run::scheduler::TriggerSource;
use crate::agent::state::metrics::Metrics;
use crate::model::Kind;
use crate::reconcile::PassOutcome;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One finished pass, as the status resource shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PassRecord {
    #[serde(serialize_with = "ser_time")]
    pub(crate) started: SystemTime,
    #[serde(serialize_with = "ser_time")]
    pub(crate) finished: SystemTime,
    /// How it ended (shown as `success`, `partial` or `failed`).
    pub(crate) result: PassOutcome,
    pub(crate) full: bool,
    pub(crate) triggers: Vec<TriggerSource>,
    /// The one-line summary (also sent as systemd STATUS=).
    pub(crate) summary: String,
    /// Operations applied / failed.
    pub(crate) applied: u64,
    pub(crate) failed: u64,
    /// Requests the pass sent to iSymphony.
    pub(crate) requests: crate::api::client::RequestCounts,
    /// Safety-valve refusals, licence holds, kinds left alone because a FreePBX source was
    /// unreadable, unreadable iSymphony resources (the status page shows them).
    pub(crate) warnings: Vec<String>,
    /// Managed objects by kind after the pass.
    pub(crate) counts_by_kind: BTreeMap<Kind, u64>,
    pub(crate) error: Option<String>,
}

/// The quick iSymphony check (see `agent::trigger::wipecheck`): its last result and its last finding.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckRecord {
    #[serde(serialize_with = "ser_time")]
    pub(crate) at: SystemTime,
    /// `ok`, or what was found (`core server default is missing …`).
    pub(crate) found: String,
    /// The last time something was found (kept after the repair).
    pub(crate) last_finding: Option<Finding>,
}

/// Something the quick iSymphony check found, and the full pass it started.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    #[serde(serialize_with = "ser_time")]
    pub(crate) at: SystemTime,
    pub(crate) found: String,
    pub(crate) full_pass_triggered: bool,
}

/// Is one side reachable?
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Reachability {
    /// None: not checked yet.
    pub(crate) reachable: Option<bool>,
    #[serde(serialize_with = "ser_opt_time")]
    pub(crate) since: Option<SystemTime>,
    pub(crate) last_error: Option<String>,
}

impl Reachability {
    fn set(&mut self, ok: bool, error: Option<String>) {
        if self.reachable != Some(ok) {
            self.since = Some(SystemTime::now());
        }
        self.reachable = Some(ok);
        if ok {
            self.last_error = None;
        } else if let Some(e) = error {
            // Database and server error texts: shown with control characters escaped.
            self.last_error = Some(crate::text::escape_control(&e).into_owned());
        }
    }
}

/// The status document (`GET /isymphony-sync/api/status`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub(crate) version: &'static str,
    pub(crate) role: Role,
    pub(crate) lock: Option<String>,
    #[serde(serialize_with = "ser_time")]
    pub(crate) started: SystemTime,
    pub(crate) config_file: Option<String>,
    #[serde(serialize_with = "ser_opt_time")]
    pub(crate) config_loaded: Option<SystemTime>,
    pub(crate) last_reload_error: Option<String>,
    pub(crate) pass_running: bool,
    pub(crate) pass_pending: bool,
    pub(crate) last_pass: Option<PassRecord>,
    #[serde(serialize_with = "ser_opt_time")]
    pub(crate) last_success: Option<SystemTime>,
    pub(crate) last_error: Option<String>,
    pub(crate) counts_by_kind: BTreeMap<Kind, u64>,
    pub(crate) freepbx: Reachability,
    pub(crate) isymphony: Reachability,
    /// What the last pass could not read on the iSymphony side (path, status, what was
    /// skipped); empty when it read everything.
    pub(crate) isymphony_unreadable: Vec<String>,
    /// The last finding of the quick check for a wiped or reinstalled iSymphony.
    pub(crate) isymphony_check: Option<CheckRecord>,
    #[serde(serialize_with = "ser_opt_time")]
    pub(crate) next_verify: Option<SystemTime>,
    #[serde(serialize_with = "ser_opt_time")]
    pub(crate) next_retry: Option<SystemTime>,
    /// The last change of the iSymphony host named by cxpanel's settings in the database
    /// (when, what), kept until the agent restarts.
    pub(crate) target_change: Option<String>,
    /// Who holds the writer lock while this agent waits, and what is wrong with that.
    pub(crate) lock_check: crate::agent::leader::holder::LockCheck,
    /// The Live API's AMI connection (`[live] backend = "asterisk"` only; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami: Option<crate::live::asterisk::AmiStats>,
    /// What the target serves live, after the last pass that applied changes or verified
    /// (None: not checked yet; see `explain::readiness`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<crate::explain::readiness::Readiness>,
}

#[derive(Debug)]
struct Inner {
    status: Status,
    metrics: Metrics,
    history: super::history::History,
    /// The Asterisk backend's facts, when the Live API follows AMI ([`AgentState::attach_ami`]).
    ami: Option<(
        Arc<crate::live::backend::Shared>,
        crate::live::asterisk::EventRate,
    )>,
}

impl Inner {
    /// The status document with the AMI figures of this moment.
    fn current(&mut self) -> Status {
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
    pub readiness: crate::explain::readiness::Tracker,
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
                status: Status {
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
    pub fn set_readiness(&self, r: crate::explain::readiness::Readiness) {
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
    pub fn status(&self) -> Status {
        self.with(|i| i.current())
    }

    /// A copy of the status document and the retained history (the status page).
    pub(crate) fn status_and_history(&self) -> (Status, super::history::History) {
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

    pub(crate) fn set_lock_check(&self, check: crate::agent::leader::holder::LockCheck) {
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

    /// Whether change detection follows the binary log now (else it polls).
    pub fn set_change_source(&self, binlog: bool) {
        self.with(|i| i.metrics.change_source(binlog))
    }

    /// The binary log stream broke (the poll took over).
    pub fn binlog_broke(&self) {
        self.with(|i| i.metrics.binlog_break())
    }

    /// Count the change detection's work since the last call (deltas of its counters).
    pub(crate) fn db_detection(&self, stamps: u64, checksums: u64, tables: u64) {
        if stamps + checksums + tables > 0 {
            self.with(|i| i.metrics.db_detection(stamps, checksums, tables))
        }
    }

    /// Record a finished pass; `change_latency` is the time from the first FreePBX-side
    /// change it covered to its successful end.
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

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-27T17:25:18.123Z` (humantime's format).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    use std::fmt::Write as _;
    // humantime panics before the epoch and refuses years after 9999: a clock that far off
    // shows as the epoch rather than stop the agent.
    let mut s = String::new();
    match write!(s, "{}", humantime::format_rfc3339_millis(t.max(UNIX_EPOCH))) {
        Ok(()) => s,
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

fn ser_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn ser_opt_time<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_800_318_123);
        assert_eq!(rfc3339(t), "2026-11-27T17:25:18.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000); // year 11476
        assert_eq!(rfc3339(far), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            rfc3339(UNIX_EPOCH)
        );
    }

    fn rec(result: PassOutcome, secs: u64) -> PassRecord {
        let started = SystemTime::now();
        PassRecord {
            started,
            finished: started + Duration::from_secs(secs),
            result,
            full: false,
            triggers: vec![TriggerSource::Database],
            summary: "x".into(),
            applied: 1,
            failed: 0,
            requests: Default::default(),
            warnings: vec![],
            counts_by_kind: BTreeMap::from([(Kind::Extension, 3)]),
            error: (!result.converged()).then(|| "boom".into()),
        }
    }

    #[test]
    fn metrics_count_passes_requests_and_latency() {
        let s = AgentState::new();
        s.record_pass(
            rec(PassOutcome::Changes, 2),
            Some(Duration::from_millis(800)),
        );
        s.record_pass(
            rec(PassOutcome::Failed, 0),
            Some(Duration::from_millis(100)),
        );
        s.http_request("GET", 200);
        s.http_request("GET", 200);
        s.http_request("POST", 422);
        s.set_role(Role::Leader, Some("l".into()));
        let m = s.metrics();
        assert!(
            m.contains("isymphony_sync_passes_total{result=\"success\"} 1"),
            "{m}"
        );
        assert!(m.contains("isymphony_sync_passes_total{result=\"failed\"} 1"));
        assert!(m.contains("isymphony_sync_pass_duration_seconds_bucket{le=\"2.5\"} 2"));
        assert!(m.contains("isymphony_sync_pass_duration_seconds_bucket{le=\"1.0\"} 1"));
        assert!(m.contains("isymphony_sync_pass_duration_seconds_count 2"));
        // The failed pass's latency is not observed; 0.8 s falls between 0.75 and 1.
        assert!(m.contains("isymphony_sync_change_to_converged_seconds_bucket{le=\"0.05\"} 0"));
        assert!(m.contains("isymphony_sync_change_to_converged_seconds_bucket{le=\"0.75\"} 0"));
        assert!(m.contains("isymphony_sync_change_to_converged_seconds_bucket{le=\"1.0\"} 1"));
        assert!(m.contains("isymphony_sync_change_to_converged_seconds_bucket{le=\"30.0\"} 1"));
        assert!(m.contains("isymphony_sync_change_to_converged_seconds_count 1"));
        assert!(m.contains("# TYPE isymphony_sync_passes counter"));
        assert!(m.contains("# UNIT isymphony_sync_pass_duration_seconds seconds"));
        assert!(m.ends_with("# EOF\n"));
        assert!(m.contains("isymphony_sync_http_requests_total{method=\"GET\",status=\"200\"} 2"));
        assert!(m.contains("isymphony_sync_http_requests_total{method=\"POST\",status=\"422\"} 1"));
        assert!(m.contains("isymphony_sync_managed_objects{kind=\"extension\"} 3"));
        assert!(m.contains("isymphony_sync_leader 1"));
        assert!(!m.contains("isymphony_sync_last_success_timestamp_seconds 0\n"));
        let st = s.status();
        assert_eq!(st.last_error.as_deref(), Some("boom"));
        assert!(st.last_success.is_some());
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["role"], "leader");
        assert_eq!(json["last_pass"]["result"], "failed");
        assert_eq!(json["counts_by_kind"]["extension"], 3);
    }

    #[test]
    fn reachability_remembers_since_and_error() {
        let s = AgentState::new();
        s.set_freepbx(false, Some("connection refused".into()));
        let st = s.status();
        assert_eq!(st.freepbx.reachable, Some(false));
        assert!(st.freepbx.since.is_some());
        s.set_freepbx(true, None);
        let st = s.status();
        assert_eq!(st.freepbx.reachable, Some(true));
        assert_eq!(st.freepbx.last_error, None);
        assert!(s.metrics().contains("isymphony_sync_freepbx_up 1"));
    }
}
