//! The one handle the Live API routes hold on live state: the [`Shared`] facts a backend keeps
//! (with a change counter to wait on) and the backend that performs actions. Two backends
//! exist (the PBX's Asterisk and the simulator), hence the enum; both write their facts through
//! [`Shared`], which lives in [`super::facts`] so that the backends need not import this file.

use super::action::{Action, ActionError};
pub use super::facts::Shared;
use super::{asterisk, simulated};
use std::sync::Arc;

/// A running backend.
pub enum Backend {
    Asterisk(asterisk::Handle),
    Simulated(simulated::Handle),
}

impl Backend {
    pub fn shared(&self) -> &Arc<Shared> {
        match self {
            Backend::Asterisk(h) => h.shared(),
            Backend::Simulated(h) => h.shared(),
        }
    }
    /// Perform `action`; Ok once the PBX accepted it (an originate is not yet answered).
    pub async fn execute(&self, action: Action) -> Result<(), ActionError> {
        match self {
            Backend::Asterisk(h) => h.execute(action).await,
            Backend::Simulated(h) => h.execute(action).await,
        }
    }
    /// Stop the backend's tasks and wait for them.
    pub async fn shutdown(self) {
        match self {
            Backend::Asterisk(h) => h.shutdown().await,
            Backend::Simulated(h) => h.shutdown().await,
        }
    }
}
