//! The Live API (`communication_manager/rest/live/`): iSymphony's second interface, the live
//! state of extensions, queues, agents, users, statuses, call segments and conference rooms,
//! and actions on them (originate, DND, queue login, pause, transfer, status).
//!
//! The configuration store says which live objects exist (and what the licence shows); a
//! backend says what state they are in. Live state is derived, never stored (an invariant,
//! listed at the end of docs/architecture.md).
//!
//! Module map:
//! - [`facts`]: what a backend knows, keyed by Asterisk's names (channels, members, rooms, DND).
//! - [`backend`]: the handle the routes hold: shared facts, change counter, actions.
//! - [`action`]: the actions with checked values, and their errors.
//! - [`value`]: the per-field grammar every value sent to AMI must pass.
//! - [`ami`]: the AMI client (codec, connection, requests).
//! - [`asterisk`]: the backend for the PBX's real Asterisk (AMI).
//! - [`simulated`]: the backend for demos and integrators.
//! - [`model`]: the configured objects of a core server with their live ids, and statuses.
//! - [`join`]: configured objects joined with facts: segments, agents, rooms, and their JSON.
//! - [`routes`]: the HTTP routes, one file per resource family.

pub mod action;
pub mod ami;
pub mod asterisk;
pub mod backend;
pub mod facts;
pub mod join;
pub mod model;
pub mod routes;
pub mod simulated;
pub mod value;

pub use crate::config::{LiveActions, LiveBackend, LiveConfig};

use backend::Backend;

/// A Live API ready to be served by the embedded endpoint: its settings and its running
/// backend.
pub struct Live {
    pub cfg: LiveConfig,
    pub backend: Backend,
}

/// Why the Live API could not start, for an administrator.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the Live API ([live] backend = \"{backend}\"): {reason}")]
pub struct StartError {
    pub backend: &'static str,
    pub reason: String,
}

impl Live {
    /// Start the backend `[live] backend` names; None when it is `off` (no `rest/live/`).
    pub async fn start(config: &crate::config::Config) -> Result<Option<Live>, StartError> {
        let cfg = config.live.clone();
        let backend = match cfg.backend {
            LiveBackend::Off => return Ok(None),
            LiveBackend::Simulated => Backend::Simulated(simulated::start(&cfg)),
            LiveBackend::Asterisk => start_asterisk(config).await?,
        };
        Ok(Some(Live { cfg, backend }))
    }
}

/// The Asterisk backend: connects in the background (the login is read from FreePBX's
/// settings and `[live] ami_*` before every attempt), so a down Asterisk never stops the
/// endpoint from starting; the Live API answers 503 until the link is up.
async fn start_asterisk(config: &crate::config::Config) -> Result<Backend, StartError> {
    Ok(Backend::Asterisk(asterisk::start_from_config(config)))
}
