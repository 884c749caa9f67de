//! The long-running service: triggers (database, files, timer, API) → debounce → one pass at a
//! time; leader election among several agents; systemd notify and watchdog.
//!
//! - [`daemon`]: the wiring: config, endpoint, triggers, passes, reload, signals.
//! - [`reload`]: reading the config file for a reload (never a half-written one).
//! - [`endpoint`]: the listeners (agent resources, Configuration API imitation).
//! - [`resources`]: the agent's own HTTP resources (`/isymphony-sync/api/…`), merged into the
//!   endpoint's router as extra routes; [`plan_share`] shares one dry-run plan among requests.
//! - [`page`]: the status page at `/isymphony-sync/` (HTML and SVG drawn here, no external
//!   assets); [`history`]: the passes and latencies it shows.
//! - [`watch`]: database fingerprint polling and file watching (what changed).
//! - [`scheduler`]: debounce, single flight, periodic verify, retry backoff (when to run).
//! - [`leader`]: one writer among several agents (MariaDB `GET_LOCK`).
//! - [`pass`]: one pass under the write [`gate`] (lock confirmed before each write stage),
//!   stopped cleanly on leadership loss or shutdown, logged and recorded.
//! - [`notify`]: systemd `sd_notify` (READY, STATUS, WATCHDOG).
//! - [`status`]: the status document; [`metrics`]: the Prometheus metrics (`prometheus-client`).
//! - [`wipecheck`]: the quick check for a wiped or reinstalled iSymphony.
//! - `db_workers`: the change poll and the leader election of one database configuration.
//! - [`executor`]: runs passes on a thread of their own.
//! - [`lockinfo`]: who holds the writer lock, for the status page.
//! - [`known_gaps`]: what the last pass could not read on the iSymphony side (a refusal met
//!   again is settled, and warned about once).
//! - [`readiness`]: after a pass that applied changes or verified, what the target serves
//!   live (status, metrics).
//! - [`memory`]: freed heap pages back to the OS after a pass or a baseline read.

pub mod csrf;
pub mod daemon;
mod db_workers;
pub mod endpoint;
pub mod executor;
pub mod gate;
pub mod history;
pub mod known_gaps;
pub mod leader;
pub mod lockinfo;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod page;
pub mod pass;
pub mod plan_share;
pub mod readiness;
pub mod reload;
pub mod resources;
pub mod scheduler;
pub mod status;
pub mod watch;
pub mod wipecheck;

/// The integration tests' MariaDB helpers, the same file (one `TestDb` for both kinds of test).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/support/db.rs"]
pub(crate) mod testdb;
