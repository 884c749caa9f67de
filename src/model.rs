//! The desired iSymphony state, as computed from FreePBX by `freepbx::mapping`.
//!
//! One struct per managed object, keyed by its natural key (extension number, username, queue
//! number, …) in ordered maps so plans and fingerprints are deterministic. Only the fields the
//! sync compares (the cxpanel module's) live here; create-only fields are filled by the reconciler.

pub mod kind;
pub use kind::Kind;

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The core server when neither the TOML nor the cxpanel settings name one.
pub const DEFAULT_CORE_SERVER: &str = "default";

/// The core-server slug, one rule for the mapping, the pass's target and the daemon's lock
/// name: `[isymphony] core_server`, else the cxpanel module's server name, else
/// [`DEFAULT_CORE_SERVER`]. An empty value counts as unset.
pub fn core_server_slug(configured: Option<&str>, cxpanel: Option<&str>) -> String {
    [configured, cxpanel]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or(DEFAULT_CORE_SERVER)
        .to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Core server slug and display name (§6.1).
    pub core_server: CoreServerSpec,
    /// Asterisk settings of the core server (§6.1).
    pub asterisk: AsteriskSpec,
    /// Voicemail agent settings and its binding to the core server (§6.2).
    pub voicemail_agent: Option<AgentSpec>,
    /// Recording agent settings (§6.3).
    pub recording_agent: Option<RecordingAgentSpec>,
    /// The AMI connection to this PBX (§6.4).
    pub pbx_server: Option<PbxServerSpec>,
    /// Keyed by `userName` (§6.5).
    pub administrators: BTreeMap<String, AdministratorSpec>,
    /// Keyed by extension number (§6.6).
    pub extensions: BTreeMap<String, ExtensionSpec>,
    /// Keyed by username (§6.7).
    pub users: BTreeMap<String, UserSpec>,
    /// Keyed by queue number (§6.8).
    pub queues: BTreeMap<String, QueueSpec>,
    /// Keyed by conference number (§6.9).
    pub conference_rooms: BTreeMap<String, ConferenceRoomSpec>,
    /// FreePBX's default parking lot (§6.10); None = parking disabled.
    pub parking_lot: Option<ParkingLotSpec>,
    /// Warnings raised while mapping (shown in plans and logs).
    pub warnings: Vec<String>,
    /// Kinds whose FreePBX source is unknown this pass (a table FreePBX implies is missing or
    /// unreadable, voicemail.conf cannot be trusted), each with a reason naming the table or
    /// file. The diff leaves these kinds exactly as the server has them.
    #[serde(default)]
    pub frozen: BTreeMap<Kind, String>,
    /// Kinds whose FreePBX source is known only in part (a required `#include` of
    /// voicemail.conf is missing), each with a reason naming the file: what was read is
    /// created and updated as usual, deletions wait.
    #[serde(default)]
    pub held_deletes: BTreeMap<Kind, String>,
    /// Problems reading FreePBX that make the pass an error (a missing table, a voicemail.conf
    /// limit exceeded); the pass still applies what is known.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl Desired {
    /// How many objects of `kind` FreePBX asks for, for the kinds reports count (FreePBX's
    /// own objects: not the server's settings, agents or sub-resources). Every kind is named
    /// here so that a new one is decided on.
    pub fn count(&self, kind: Kind) -> Option<usize> {
        match kind {
            Kind::Administrator => Some(self.administrators.len()),
            Kind::Extension => Some(self.extensions.len()),
            Kind::User => Some(self.users.len()),
            Kind::Queue => Some(self.queues.len()),
            Kind::ConferenceRoom => Some(self.conference_rooms.len()),
            Kind::ParkingLot => Some(usize::from(self.parking_lot.is_some())),
            Kind::CoreServer
            | Kind::AsteriskSettings
            | Kind::VoicemailAgent
            | Kind::VoicemailAgentIdentifier
            | Kind::RecordingAgent
            | Kind::PbxServer
            | Kind::Contact
            | Kind::Email
            | Kind::Phone
            | Kind::ManagingUser => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoreServerSpec {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsteriskSpec {
    pub originating_context: String,
    pub redirecting_context: String,
    pub music_on_hold_class: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub identifier: String,
    pub root_path: String,
    pub resource_host: String,
    pub resource_extension: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingAgentSpec {
    pub identifier: String,
    pub root_path: String,
    pub resource_host: String,
    pub resource_extension: String,
    pub file_name_mask: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PbxServerSpec {
    pub display_name: String,
    pub host: String,
    pub port: i64,
    pub username: String,
    pub password: Secret,
    pub cdr_host: String,
    pub cdr_port: i64,
    /// None: unknown (never sent; the server keeps what it has).
    pub cdr_username: Option<String>,
    pub cdr_password: Option<Secret>,
    pub recording_agent_identifier: String,
}

/// A password as FreePBX stores it, pushed through the `noHash` paths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PasswordSpec {
    /// The stored value (SHA-1 hex, or a phpass hash in userman mode); None: FreePBX has no
    /// password to give (the reconciler creates the login with an unusable random value).
    pub hash: Option<Secret>,
    /// FreePBX asked for this password to be pushed (cxpanel's `password_dirty`).
    pub dirty: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdministratorSpec {
    pub user_name: String,
    pub password: PasswordSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtensionSpec {
    pub extension: String,
    pub display_name: String,
    pub auto_answer: bool,
    pub peer: String,
    pub agent_name: String,
    pub agent_location: String,
    pub agent_interface: String,
    pub voice_mail_context: String,
    pub voice_mail_box: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PhoneSpec {
    /// Label: `Cell`, `Work`, `Home`, or free text from cxpanel_phone_number.
    pub kind: String,
    pub number: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserSpec {
    pub username: String,
    pub password: PasswordSpec,
    pub full: bool,
    pub enabled: bool,
    pub first_name: String,
    pub last_name: String,
    /// Every address FreePBX holds for the user (one entry per address), type `Work`.
    pub emails: Vec<String>,
    /// Phone numbers FreePBX holds for the user.
    pub phones: Vec<PhoneSpec>,
    /// Extension numbers whose managing user this user is.
    pub extensions: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueSpec {
    pub identifier: String,
    pub display_name: String,
    pub destination_extension: String,
    pub destination_context: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConferenceRoomSpec {
    pub identifier: String,
    pub name: String,
    pub destination_extension: String,
    pub destination_context: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParkingLotSpec {
    pub identifier: String,
    pub name: String,
    pub destination_extension: String,
    pub destination_context: String,
}

/// A `cxpanel_managed_items` row: which iSymphony object the cxpanel module created or adopted.
/// The module's `type` string is parsed into a [`Kind`] where it is read (rows of a type the
/// agent does not manage are left out there); snapshots write it back as that string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ManagedItem {
    #[serde(with = "kind::as_type_name")]
    pub kind: Kind,
    pub fpbx_id: String,
    pub cxpanel_id: String,
}
