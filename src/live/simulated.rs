//! The simulated backend: live state for demos and integrators, without a PBX.
//! (Being built: calls, DND, queue logins, statuses.)

use super::action::{Action, ActionError};
use super::backend::Shared;
use std::sync::Arc;

pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
    pub async fn execute(&self, _action: Action) -> Result<(), ActionError> {
        Err(ActionError::Failed(
            "the simulated backend is not built yet".into(),
        ))
    }
    pub async fn shutdown(self) {}
}
