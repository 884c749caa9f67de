//! The Asterisk backend: live state from the PBX's Asterisk through AMI.
//!
//! [`start`] spawns the supervisor ([`session`]): connect and log in, take one snapshot with
//! the list actions ([`snapshot`]), then follow events ([`events`]); no polling. While AMI is
//! down the facts are empty and the link is Down with its reason and since when; every
//! action then answers [`ActionError::Unavailable`]. Actions are performed as FreePBX does
//! them ([`actions`]). [`settings`] finds the AMI login (FreePBX's `freepbx_settings`,
//! overridden by `[live] ami_*`); [`stats`] is what the metrics and status page show.

mod actions;
pub mod check;
pub mod events;
pub mod session;
pub mod settings;
pub mod snapshot;
pub mod stats;

pub use crate::live::ami::AmiSettings;
pub use settings::{settings_from, SettingsError};
pub use stats::{AmiStats, EventRate};

use super::action::{Action, ActionError};
use super::facts::Shared;
use super::facts::{Facts, Link};
use crate::config::Config;
use crate::live::ami::client::REQUEST_TIMEOUT;
use crate::live::ami::{ActionBuilder, AmiError, Reply, Requester};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub struct Handle {
    shared: Arc<Shared>,
    requester: Requester,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    target: String,
}

/// Start the backend with a fixed AMI login (inside a Tokio runtime). It connects in the
/// background: the facts' link says when it is up.
pub fn start(ami: AmiSettings) -> Handle {
    let target = ami.describe();
    spawn(session::Source::Fixed(ami), target)
}

/// Start the backend with the AMI login of `cfg` ([`settings_from`]: FreePBX's
/// `freepbx_settings`, overridden by `[live] ami_*`), read again before every connection
/// attempt; while it cannot be read the link is Down with that reason, retried with backoff.
pub fn start_from_config(cfg: &Config) -> Handle {
    let target = match (
        &cfg.live.ami_username,
        &cfg.live.ami_host,
        cfg.live.ami_port,
    ) {
        (Some(u), Some(h), Some(p)) => format!("{u}@{h}:{p}"),
        _ => "the AMI login in FreePBX's settings".to_string(),
    };
    spawn(session::Source::Config(Box::new(cfg.clone())), target)
}

fn spawn(source: session::Source, target: String) -> Handle {
    let shared = Shared::new(Facts::down(format!(
        "connecting to Asterisk (AMI {target})"
    )));
    let (req_tx, requests) = mpsc::channel(64);
    let (stop, stop_rx) = watch::channel(false);
    let inputs = session::Inputs {
        requests,
        stop: stop_rx,
    };
    let task = tokio::spawn(session::supervise(source, shared.clone(), inputs));
    Handle {
        shared,
        requester: Requester::new(req_tx),
        stop,
        task: Mutex::new(Some(task)),
        target,
    }
}

impl Handle {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `user@host:port` of the AMI login (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connection figures for the metrics and the status page.
    pub fn stats(&self) -> AmiStats {
        self.shared.read(AmiStats::of)
    }

    /// Perform `action` on Asterisk; Ok once Asterisk accepted it.
    pub async fn execute(&self, action: Action) -> Result<(), ActionError> {
        self.unavailable_if_down()?;
        actions::perform(self, action).await
    }

    fn unavailable_if_down(&self) -> Result<(), ActionError> {
        self.shared.read(|f| match &f.link {
            Link::Up { .. } => Ok(()),
            Link::Down { since, reason } => Err(ActionError::Unavailable {
                since: *since,
                reason: reason.clone(),
            }),
        })
    }

    /// Send one action and wait for Asterisk's reply.
    pub(crate) async fn ask(&self, a: ActionBuilder) -> Result<Reply, ActionError> {
        let limit = REQUEST_TIMEOUT + Duration::from_secs(1);
        match tokio::time::timeout(limit, self.requester.ask(a)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(Some(AmiError::Unsafe(u)))) => Err(ActionError::Failed(u.to_string())),
            Ok(Err(_)) | Err(_) => {
                self.unavailable_if_down()?;
                Err(ActionError::Unavailable {
                    since: SystemTime::now(),
                    reason: "the AMI connection was lost during the action".into(),
                })
            }
        }
    }

    /// Stop the backend (Logoff when connected) and wait for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
