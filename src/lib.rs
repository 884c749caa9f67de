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
//! The command line, the one Tokio runtime and everything printed live in the binary's
//! `src/cli/` (one module per mode); this library returns reports and errors and never
//! prints (logs go through `tracing`).
//!
//! Layers. An arrow is "imports"; every arrow points down, none back up, so there is no
//! circle. The pure core does no I/O (no HTTP, SQL, files, clock or runtime) and is pinned by
//! `tests/testsuite/docs/layers.rs`:
//!
//! ```text
//!  front ends    main.rs · cli (the binary's modes) · check · cxpanel
//!                   │
//!  service       agent (daemon, trigger, leader, run, state, http)
//!                   │
//!  I/O stages    reconcile::{apply, observe, source, state, refusals}   freepbx (db, files,
//!                api::client (reqwest)   server (the embedded endpoint)  mapping → Desired)
//!                   │
//!  pure core     reconcile::{diff, plan, ownership, passwords, facts, valve, frozen, partial}
//!                   │
//!  data          model · api::{types, paths, confirm} · config · secret · digest · text · kept
//! ```
//!
//! Module map:
//! - [`config`]: the TOML configuration and its defaults.
//! - [`digest`]: the one SHA-1 hex rule (iSymphony's password form, fingerprints).
//! - [`check`]: the `--check-config` report.
//! - [`secret`]: a string type that never prints its value.
//! - [`model`]: the desired iSymphony state, one struct per managed object, and the typed
//!   [`model::Kind`] every layer uses.
//! - [`api`]: the Configuration API's wire JSON (shared by client and server), one
//!   description per managed collection (`api::resource`), paths, client.
//! - [`freepbx`]: reading FreePBX (database and files) into a Snapshot, and mapping it.
//! - [`reconcile`]: diff, plan, apply, ownership; [`reconcile::facts`] holds what a pass
//!   learns, [`reconcile::state`] stores it in SQLite.
//! - [`server`]: the embedded, spec-conformant Configuration API endpoint.
//! - [`live`]: its Live API (`rest/live/`): the configured objects joined with live state
//!   from Asterisk (AMI) or a simulator, and actions on them.
//! - [`explain`]: `--explain KIND/KEY`, one object from its FreePBX row to live in iSymphony.
//! - [`agent`]: the long-running service: triggers, leader election, systemd.
//! - [`cxpanel`]: where the cxpanel module's own sync writes (`--check-config`).
//! - [`logging`]: tracing setup (text, journald-friendly text, JSON).
//! - [`text`]: showing foreign text safely (control characters escaped, URLs without
//!   credentials).
//! - [`kept`]: a connection kept open from one daemon pass to the next.
//! - [`integrity`], [`private_files`]: damage checks at start and 0600/0700 files for the
//!   agent's SQLite databases and exports.
//!
//! The binary adds `cli` (in `src/cli/`, not part of this library). `docs/architecture.md`
//! lists every file and follows one pass through them.

pub mod agent;
pub mod api;
pub mod check;
pub mod config;
pub mod cxpanel;
pub mod digest;
pub mod explain;
pub mod freepbx;
pub mod integrity;
pub mod kept;
pub mod live;
pub mod logging;
pub mod model;
pub mod private_files;
pub mod reconcile;
pub mod secret;
pub mod server;
pub mod text;

pub use freepbx::mapping;
