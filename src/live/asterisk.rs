//! The Asterisk backend: live state from the PBX's Asterisk through AMI.
//! (Being built: connect, snapshot, events, actions.)

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
            "the Asterisk backend is not built yet".into(),
        ))
    }
    pub async fn shutdown(self) {}
}
