//! isymphony-sync keeps an iSymphony operator-panel server in step with a FreePBX system.
//!
//! The agent is a pipeline; each stage is a module with one job and plain data between them:
//!
//! ```text
//! FreePBX MariaDB + files ─► freepbx::read() ─► Snapshot ─► mapping::desired() ─► Desired ─┐
//! iSymphony Config API ─► api::client ─► Observed ─────────────────────────────────────────┤
//!                                   reconcile::diff(Desired, Observed, Ownership) ─► Plan ◄─┘
//!                                   --dry-run: render the plan; otherwise reconcile::apply
//! ```
//!
//! Module map:
//! - [`config`]: the TOML configuration and its defaults.
//! - [`secret`]: a string type that never prints its value.
//! - [`model`]: the desired iSymphony state, one struct per managed object.
//! - [`api`]: the Configuration API's wire JSON (shared by client and server), paths, client.
//! - [`freepbx`]: reading FreePBX (database and files) into a Snapshot, and mapping it.
//! - [`reconcile`]: diff, plan, apply, ownership.
//! - [`server`]: the embedded, spec-conformant Configuration API endpoint.
//! - [`agent`]: the long-running service: triggers, leader election, systemd.
//! - [`cxpanel`]: where the cxpanel module's own sync writes (`--check-config`).
//! - [`logging`]: tracing setup (text, journald-friendly text, JSON).
//! - [`text`]: showing foreign text safely (control characters escaped, URLs without
//!   credentials).
//! - [`integrity`], [`private_files`]: damage checks at start and 0600/0700 files for the
//!   agent's SQLite databases and exports.

pub mod agent;
pub mod api;
pub mod check;
pub mod config;
pub mod cxpanel;
pub mod digest;
pub mod freepbx;
pub mod integrity;
pub mod logging;
pub mod model;
pub mod private_files;
pub mod reconcile;
pub mod secret;
pub mod server;
pub mod text;

pub use freepbx::mapping;
