//! The long-running service: triggers (database, files, timer, API) → debounce → one pass at a
//! time; leader election among several agents; systemd notify and watchdog.
//!
//! Grouped by job:
//! - [`daemon`]: the wiring: config, endpoint, triggers, passes, reload, signals;
//!   `db_workers`: the change poll and the leader election of one database configuration;
//!   [`reload`]: reading the config file for a reload (never a half-written one);
//!   [`notify`]: systemd `sd_notify` (READY, STATUS, WATCHDOG); [`memory`]: freed heap pages
//!   back to the OS after a pass or a baseline read; [`tasks`]: the daemon's tasks, with one
//!   shutdown signal and a bounded join.
//! - [`trigger`]: what starts a pass: [`trigger::changes`] (database fingerprint polling and
//!   file watching), [`trigger::binlog`] (MariaDB's binary log where it is on, the poll as
//!   fallback) and [`trigger::wipecheck`] (the quick check for a wiped or reinstalled
//!   iSymphony).
//! - [`leader`]: one writer among several agents (MariaDB `GET_LOCK`):
//!   [`leader::election`] and [`leader::holder`] (who holds the lock, for the status page).
//! - [`run`]: [`run::scheduler`] (debounce, single flight, periodic verify, retry backoff: when
//!   to run); [`run::pass`] (one pass under the write [`run::permit`], lock confirmed before
//!   each write stage, stopped cleanly on leadership loss or shutdown, logged and recorded);
//!   [`run::executor`] (passes on a thread of their own); [`run::known_gaps`] (what the last
//!   pass could not read on the iSymphony side: a refusal met again is settled, and warned
//!   about once).
//! - [`state`]: [`state::AgentState`] (what daemon and HTTP share), [`state::status`] (the
//!   status document), [`state::history`] (the passes and
//!   latencies the page shows), [`state::metrics`] (Prometheus, `prometheus-client`),
//!   [`state::readiness`] (after a pass that applied changes or verified, what the target
//!   serves live).
//! - [`http`]: [`http::endpoint`] (the listeners: agent resources, Configuration API
//!   embedded endpoint), [`http::resources`] (the agent's own resources, `/isymphony-sync/api/…`,
//!   merged into the endpoint's router; [`http::agent_api`]: what they need from the running
//!   agent), [`http::plan_share`] (one dry-run plan shared among
//!   requests), [`http::csrf`] (no cross-site writes), [`http::page`] (the status page at
//!   `/isymphony-sync/`, HTML and SVG drawn here, no external assets).

pub mod daemon;
mod db_workers;
pub(crate) mod http;
pub mod leader;
pub(crate) mod memory;
pub(crate) mod notify;
pub(crate) mod reload;
pub(crate) mod run;
pub mod state;
pub(crate) mod tasks;
pub mod trigger;

/// The integration tests' MariaDB helpers, the same file (one `TestDb` for both kinds of test).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/support/db.rs"]
pub(crate) mod testdb;
