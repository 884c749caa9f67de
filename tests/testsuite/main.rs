//! The integration tests, in one test binary (as cargo's own `tests/testsuite`): one link of
//! the crate instead of one per file. Modules are grouped by the behaviour they pin; shared
//! helpers live in `tests/support` (reached as `crate::support`), which the benches and the
//! crate's unit tests include too.
//!
//! - [`server`]: the embedded Configuration API endpoint and its store.
//! - [`source`]: reading FreePBX (MariaDB, its config files, voicemail.conf).
//! - [`reconcile`]: passes from FreePBX into the endpoint: plans, counts, exit codes.
//! - [`agent`]: the binary as a service: triggers, reloads, limits, trust, its own files.
//! - [`live`]: the Live API, simulated and against a real Asterisk.
//! - [`cli`]: the command line: modes, `--check-config`, progress, cxpanel take-over.
//! - [`evidence`]: faults, crashes and secrets over whole syncs of 1,000 extensions.
//! - [`packaging`]: the shipped config files and the systemd unit.
//! - [`browser`]: pages in a real headless Chromium.
//! - [`docs`]: the docs and the layers match the code.
//!
//! To add a test file: put it in the group's directory (e.g. `server/new_thing.rs`), add
//! `mod new_thing;` to that group's `mod.rs`, and write `use crate::support;` where a
//! stand-alone test file had `mod support;`. Run it with
//! `cargo test --test testsuite server::new_thing`.

#[path = "../support/mod.rs"]
mod support;

mod agent;
mod browser;
mod cli;
mod docs;
mod evidence;
mod live;
mod packaging;
mod reconcile;
mod server;
mod source;
