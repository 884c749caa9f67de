//! The long-running service: triggers (database, files, timer, API) → debounce → one pass at a
//! time; leader election among several agents; systemd notify and watchdog.
//!
//! - [`daemon`]: the wiring: config, endpoint, triggers, passes, reload, signals.
//! - [`reload`]: reading the config file for a reload (never a half-written one).
//! - [`endpoint`]: the listeners (agent resources, Configuration API imitation).
//! - [`watch`]: database fingerprint polling and file watching (what changed).
//! - [`scheduler`]: debounce, single flight, periodic verify, retry backoff (when to run).
//! - [`leader`]: one writer among several agents (MariaDB `GET_LOCK`).
//! - [`pass`]: one pass under the write [`gate`] (lock confirmed before each write stage),
//!   stopped cleanly on leadership loss or shutdown, logged and recorded.
//! - [`notify`]: systemd `sd_notify` (READY, STATUS, WATCHDOG).
//! - [`status`]: the status document; [`metrics`]: the Prometheus metrics (`prometheus-client`).
//! - [`wipecheck`]: the quick check for a wiped or reinstalled iSymphony.

pub mod daemon;
pub mod endpoint;
pub mod executor;
pub mod gate;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod pass;
pub mod reload;
pub mod scheduler;
pub mod status;
pub mod watch;
pub mod wipecheck;

#[cfg(test)]
pub(crate) mod testdb;
