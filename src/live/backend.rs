//! The one handle the Live API routes hold on live state: the [`Facts`] a backend keeps, a
//! change counter to wait on, and the backend that performs actions. Two backends exist (the
//! PBX's Asterisk and the simulator), hence the enum; both write their facts through [`Shared`].

use super::action::{Action, ActionError};
use super::facts::Facts;
use super::{asterisk, simulated};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Facts shared between a backend (the writer) and the routes (readers).
#[derive(Debug)]
pub struct Shared {
    facts: RwLock<Facts>,
    /// Bumped after every change; tests and benchmarks wait on it.
    version: watch::Sender<u64>,
}

impl Shared {
    pub fn new(facts: Facts) -> Arc<Shared> {
        Arc::new(Shared {
            facts: RwLock::new(facts),
            version: watch::Sender::new(0),
        })
    }
    /// Read the facts (no I/O, no await while held).
    pub fn read<T>(&self, f: impl FnOnce(&Facts) -> T) -> T {
        let g = self.facts.read().unwrap_or_else(|e| e.into_inner());
        f(&g)
    }
    /// Change the facts and tell the waiters.
    pub fn update<T>(&self, f: impl FnOnce(&mut Facts) -> T) -> T {
        let out = {
            let mut g = self.facts.write().unwrap_or_else(|e| e.into_inner());
            f(&mut g)
        };
        self.version.send_modify(|v| *v += 1);
        out
    }
    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

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
