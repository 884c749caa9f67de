//! The status document ([`AgentStatus`]) and the records it is made of: passes, checks,
//! reachability, the lock check. [`AgentState`](super::AgentState) keeps it.

use crate::agent::leader::election::Role;
use crate::agent::run::scheduler::TriggerSource;
use crate::model::Kind;
use crate::reconcile::PassOutcome;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

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
    pub(crate) fn set(&mut self, ok: bool, error: Option<String>) {
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

/// What the lock watch found while this agent waits (the status document's `lock_check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct LockCheck {
    /// Who holds the lock (None: this agent leads, nobody holds it, or not asked yet).
    pub(crate) holder: Option<String>,
    /// The holder is another MariaDB account than the agents' login.
    pub(crate) foreign_holder: bool,
    /// This agent has been standby for longer than `[sync] standby_warn_after`.
    pub(crate) standby_too_long: bool,
    pub(crate) warnings: Vec<String>,
}

/// The status document (`GET /isymphony-sync/api/status`).
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
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
    pub(crate) lock_check: LockCheck,
    /// The Live API's AMI connection (`[live] backend = "asterisk"` only; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami: Option<crate::live::asterisk::AmiStats>,
    /// What the target serves live, after the last pass that applied changes or verified
    /// (None: not checked yet; see `explain::readiness`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<crate::explain::readiness::Readiness>,
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
    use crate::agent::state::AgentState;
    use std::time::Duration;

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
