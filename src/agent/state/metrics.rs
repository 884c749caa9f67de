//! The agent's Prometheus metrics, kept and encoded by `prometheus-client` (the Prometheus
//! project's Rust client) in the OpenMetrics text format.
//!
//! Counters and histograms are updated as things happen; the gauges that only mirror the status
//! document (role, reachability, managed objects, last success) are set from it at each scrape,
//! so the two can never disagree. Every name is prefixed `isymphony_sync_`; counters get the
//! `_total` suffix from the encoder, units (`_seconds`) from their registration. The names are
//! the ones the hand-written exposition used; docs/README-agent.md lists them.

use crate::agent::leader::election::Role;
use crate::agent::state::status::AgentStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

/// The content type of [`Metrics::encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Pass duration buckets, seconds: a converged pass at 1,000 extensions takes ~50 ms, a first
/// sync of 10,000 several seconds.
const DURATION_BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Change-to-converged buckets, 50 ms … 30 s: fine below a second, where a healthy agent is
/// (p95 ≤ 0.5 s), coarse above, where only outages and retries are.
pub(crate) const LATENCY_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabel {
    query: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// One of [`crate::api::counts::METHOD_LABELS`], never the client's own text.
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Every metric the agent exports, registered once.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    passes: Family<ResultLabel, Counter>,
    pass_duration: Histogram,
    change_latency: Histogram,
    http: Family<HttpLabels, Counter>,
    managed: Family<KindLabel, Gauge>,
    not_live: Family<KindLabel, Gauge<f64, AtomicU64>>,
    last_success: Gauge<f64, AtomicU64>,
    leader: Gauge,
    freepbx_up: Gauge,
    isymphony_up: Gauge,
    unreadable: Gauge,
    resets: Counter,
    reloads: Family<ResultLabel, Counter>,
    db_polls: Family<ResultLabel, Counter>,
    db_queries: Family<QueryLabel, Counter>,
    tables_checksummed: Counter,
    change_source: Family<SourceLabel, Gauge>,
    binlog_breaks: Counter,
    lock_foreign: Gauge,
    standby_too_long: Gauge,
    /// The Live API's AMI figures, registered only when the Asterisk backend runs.
    ami: Option<AmiMetrics>,
}

/// `isymphony_sync_ami_connected`, `isymphony_sync_ami_events_total`,
/// `isymphony_sync_live_calls`, set from the backend's facts at each scrape.
#[derive(Debug)]
struct AmiMetrics {
    shared: std::sync::Arc<crate::live::backend::Shared>,
    connected: Gauge,
    events: Counter,
    calls: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("isymphony_sync"),
            passes: Family::default(),
            pass_duration: Histogram::new(DURATION_BUCKETS),
            change_latency: Histogram::new(LATENCY_BUCKETS),
            http: Family::default(),
            managed: Family::default(),
            not_live: Family::default(),
            last_success: Gauge::default(),
            leader: Gauge::default(),
            freepbx_up: Gauge::default(),
            isymphony_up: Gauge::default(),
            unreadable: Gauge::default(),
            resets: Counter::default(),
            reloads: Family::default(),
            db_polls: Family::default(),
            db_queries: Family::default(),
            tables_checksummed: Counter::default(),
            change_source: Family::default(),
            binlog_breaks: Counter::default(),
            lock_foreign: Gauge::default(),
            standby_too_long: Gauge::default(),
            ami: None,
        };
        // Series that exist from the start at 0, so that rate() and alerts see them.
        for o in crate::reconcile::PassOutcome::all() {
            let _ = m.passes.get_or_create(&ResultLabel { result: o.as_str() });
        }
        for r in ["ok", "invalid"] {
            let _ = m.reloads.get_or_create(&ResultLabel { result: r });
        }
        for r in ["ok", "error"] {
            let _ = m.db_polls.get_or_create(&ResultLabel { result: r });
        }
        for q in ["stamps", "checksum"] {
            let _ = m.db_queries.get_or_create(&QueryLabel { query: q });
        }
        m.change_source(false);
        m.register()
    }

    // The encoder appends "." to each help text, `_total` to counters and the unit to names.
    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register("passes", "Reconcile passes by result", self.passes.clone());
        r.register_with_unit(
            "pass_duration",
            "Duration of reconcile passes",
            Unit::Seconds,
            self.pass_duration.clone(),
        );
        r.register_with_unit(
            "change_to_converged",
            "Seconds from the moment the agent detected a FreePBX change (the database poll that saw the fingerprint change, or the file event) to the end of the successful pass that converged it, failed passes and retries in between included; changes detected before the same pass count once, from the earliest",
            Unit::Seconds,
            self.change_latency.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests answered by the embedded endpoint",
            self.http.clone(),
        );
        r.register(
            "managed_objects",
            "Objects managed on the iSymphony server, by kind",
            self.managed.clone(),
        );
        r.register(
            "not_live_objects",
            "Configured objects the target's Live API does not list, by kind (NaN: unknown)",
            self.not_live.clone(),
        );
        r.register_with_unit(
            "last_success_timestamp",
            "Unix time of the last successful pass (0: none yet)",
            Unit::Seconds,
            self.last_success.clone(),
        );
        r.register(
            "leader",
            "1 when this agent holds the writer lock",
            self.leader.clone(),
        );
        r.register(
            "freepbx_up",
            "1 when the FreePBX database was reachable at the last check",
            self.freepbx_up.clone(),
        );
        r.register(
            "isymphony_up",
            "1 when the iSymphony API was reachable at the last pass",
            self.isymphony_up.clone(),
        );
        r.register(
            "isymphony_unreadable_resources",
            "iSymphony collections or sub-resources the last pass could not read (0: a complete read)",
            self.unreadable.clone(),
        );
        r.register(
            "isymphony_resets",
            "Full passes started because iSymphony looked wiped or reinstalled",
            self.resets.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration loads by result",
            self.reloads.clone(),
        );
        r.register(
            "lock_holder_foreign",
            "1 when the writer lock is held by a MariaDB account that is not the agents' login",
            self.lock_foreign.clone(),
        );
        r.register(
            "standby_too_long",
            "1 when this agent has been standby for longer than [sync] standby_warn_after",
            self.standby_too_long.clone(),
        );
        self.register_detection();
        self
    }

    /// The change detection's metrics (poll, binary log).
    fn register_detection(&mut self) {
        let r = &mut self.registry;
        r.register(
            "db_polls",
            "Change-detection polls of the FreePBX database",
            self.db_polls.clone(),
        );
        r.register(
            "db_detection_queries",
            "Change-detection queries beyond the per-poll probe: `stamps` (information_schema.TABLES, after a write anywhere on the server) and `checksum` (CHECKSUM TABLE of recently written watched tables)",
            self.db_queries.clone(),
        );
        r.register(
            "change_source",
            "1 for where change detection comes from now: `binlog` (the binary log stream, with a slow safety poll) or `poll` (the fingerprint poll)",
            self.change_source.clone(),
        );
        r.register(
            "binlog_stream_breaks",
            "Binary log streams that broke (the poll took over until the stream was back)",
            self.binlog_breaks.clone(),
        );
        r.register(
            "db_tables_checksummed",
            "Watched tables checksummed by the change detection",
            self.tables_checksummed.clone(),
        );
    }

    /// A finished pass: its result, its duration and (successful passes that covered a change)
    /// the change-to-converged latency, in seconds.
    pub(crate) fn pass(&self, result: &'static str, secs: f64, change_latency: Option<f64>) {
        self.passes.get_or_create(&ResultLabel { result }).inc();
        self.pass_duration.observe(secs);
        if let Some(l) = change_latency {
            self.change_latency.observe(l);
        }
    }

    pub(crate) fn http_request(&self, method: &str, status: u16) {
        let labels = HttpLabels {
            method: crate::api::counts::method_label(method),
            status,
        };
        self.http.get_or_create(&labels).inc();
    }

    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "invalid" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    pub(crate) fn db_poll(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.db_polls.get_or_create(&ResultLabel { result }).inc();
    }

    /// What the change detection did since the last call (see [`crate::agent::trigger::changes`]).
    pub(crate) fn db_detection(&self, stamps: u64, checksums: u64, tables: u64) {
        self.db_queries
            .get_or_create(&QueryLabel { query: "stamps" })
            .inc_by(stamps);
        self.db_queries
            .get_or_create(&QueryLabel { query: "checksum" })
            .inc_by(checksums);
        self.tables_checksummed.inc_by(tables);
    }

    /// Where change detection comes from: the binary log or the poll.
    pub(crate) fn change_source(&self, binlog: bool) {
        for (source, on) in [("binlog", binlog), ("poll", !binlog)] {
            let _ = self
                .change_source
                .get_or_create(&SourceLabel { source })
                .set(i64::from(on));
        }
    }

    pub(crate) fn binlog_break(&self) {
        self.binlog_breaks.inc();
    }

    pub(crate) fn isymphony_reset(&self) {
        self.resets.inc();
    }

    /// Export the Asterisk backend's connection (once; later calls change nothing).
    pub(crate) fn attach_ami(&mut self, shared: std::sync::Arc<crate::live::backend::Shared>) {
        if self.ami.is_some() {
            return;
        }
        let m = AmiMetrics {
            shared,
            connected: Gauge::default(),
            events: Counter::default(),
            calls: Gauge::default(),
        };
        let r = &mut self.registry;
        r.register(
            "ami_connected",
            "1 while the Live API's AMI connection to Asterisk is up (snapshot taken, events followed)",
            m.connected.clone(),
        );
        r.register(
            "ami_events",
            "AMI events applied to the live state",
            m.events.clone(),
        );
        r.register(
            "live_calls",
            "Calls in Asterisk now (distinct Linkedid of the channels)",
            m.calls.clone(),
        );
        self.ami = Some(m);
    }

    fn set_ami(&self) {
        let Some(m) = &self.ami else { return };
        let st = m.shared.read(crate::live::asterisk::AmiStats::of);
        m.connected.set(i64::from(st.connected_since.is_some()));
        m.calls.set(i64::try_from(st.calls_now).unwrap_or(i64::MAX));
        m.events
            .inc_by(st.events_total.saturating_sub(m.events.get()));
    }

    /// The OpenMetrics text exposition, with the status-derived gauges set from `s`.
    pub(crate) fn encode(&self, s: &AgentStatus) -> String {
        self.set_ami();
        self.leader.set(i64::from(s.role == Role::Leader));
        self.freepbx_up
            .set(i64::from(s.freepbx.reachable == Some(true)));
        self.isymphony_up
            .set(i64::from(s.isymphony.reachable == Some(true)));
        self.unreadable
            .set(i64::try_from(s.isymphony_unreadable.len()).unwrap_or(i64::MAX));
        self.last_success.set(s.last_success.map_or(0.0, unix_secs));
        self.lock_foreign
            .set(i64::from(s.lock_check.foreign_holder));
        self.standby_too_long
            .set(i64::from(s.lock_check.standby_too_long));
        // Kinds no longer managed disappear rather than linger at their last value.
        self.managed.clear();
        for (kind, n) in &s.counts_by_kind {
            let g = self.managed.get_or_create(&KindLabel {
                kind: kind.name().to_string(),
            });
            g.set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        // Unknown readiness (no Live API, not checked yet) is NaN, never 0.
        let counts = s.readiness.as_ref().and_then(|r| r.counts());
        for (kind, _) in crate::api::live::LISTED {
            let n = counts.as_ref().and_then(|c| c.get(&kind)).copied();
            let g = self.not_live.get_or_create(&KindLabel {
                kind: kind.name().to_string(),
            });
            g.set(n.map_or(f64::NAN, |n| n as f64));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_methods_are_labelled_from_a_fixed_set() {
        let m = Metrics::new();
        for i in 0..1000 {
            m.http_request(&format!("MADE-UP-{i}"), 401);
        }
        m.http_request("GET", 200);
        m.http_request("get", 200);
        let out = m.encode(&crate::agent::state::AgentState::new().status());
        assert!(
            out.contains(
                "isymphony_sync_http_requests_total{method=\"other\",status=\"401\"} 1000"
            ),
            "{out}"
        );
        assert!(
            out.contains("isymphony_sync_http_requests_total{method=\"other\",status=\"200\"} 1"),
            "{out}"
        );
        assert!(!out.contains("MADE-UP"), "{out}");
    }
}
