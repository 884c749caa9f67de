//! `[live]`: the Live API (`communication_manager/rest/live/`) of the embedded endpoint and
//! where its live state comes from.

use crate::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

/// Where live state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LiveBackend {
    /// No Live API: `rest/live/` answers 404, as iSymphony 3.1 would.
    #[default]
    Off,
    /// The PBX's Asterisk, through AMI.
    Asterisk,
    /// A simulator for demos and integrators (no PBX).
    Simulated,
}

/// Which actions may place calls (originate, transfer): a toll-fraud door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LiveActions {
    /// Every action answers 403.
    #[default]
    Off,
    /// Destinations must be configured extensions, queues, conference rooms or parking.
    Internal,
    /// Any dial string (still validated per field).
    All,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    pub backend: LiveBackend,
    pub actions: LiveActions,
    /// AMI host; absent: FreePBX's `ASTMANAGERHOST` (freepbx_settings), else 127.0.0.1.
    pub ami_host: Option<String>,
    /// AMI port; absent: FreePBX's `ASTMANAGERPORT`, else 5038.
    pub ami_port: Option<u16>,
    /// AMI user; absent: FreePBX's `AMPMGRUSER`.
    pub ami_username: Option<String>,
    /// AMI secret; absent: FreePBX's `AMPMGRPASS`.
    pub ami_password: Option<Secret>,
    /// Restricted resources (extensions, queues, agents, status, call segments) are licensed;
    /// false: they answer 403, as iSymphony does without a licence.
    pub licensed: bool,
    /// Simulated backend: how long an originated call lasts.
    #[serde(deserialize_with = "super::parse::de_duration")]
    pub simulated_call_duration: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            backend: LiveBackend::Off,
            actions: LiveActions::Off,
            ami_host: None,
            ami_port: None,
            ami_username: None,
            ami_password: None,
            licensed: true,
            simulated_call_duration: Duration::from_secs(30),
        }
    }
}
