//! The raw FreePBX data one pass works on: rows as read (no interpretation) plus the parsed
//! files, and its JSON export/import format (`--export-snapshot`, `[freepbx] snapshot`).
//!
//! Every password and hash is a [`Secret`]. `Secret` serialises its clear value (the wire needs
//! it), so the export goes through [`Snapshot::redacted`], which replaces each secret by `***`
//! unless the operator asked for `--include-secrets`.

/// `cxpanel_managed_items` rows, their `type` parsed into a kind where they are read.
pub use crate::model::ManagedItem;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Version of the JSON layout; bumped when a field changes meaning.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// What replaces a secret in a redacted export.
pub const REDACTED: &str = "***";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub format: u32,
    /// Where it came from: `user@host:port/db` (never a password), or a file path.
    pub source: String,
    /// Host name of the PBX (cxpanel's default `resource_host` of both agents).
    pub hostname: String,
    /// Tables that existed in the database (exact names); decides "module installed".
    pub tables: BTreeSet<String>,
    /// Tables that exist but could not be read: table → the server's message.
    pub unreadable_tables: BTreeMap<String, String>,
    /// The CDR database login FreePBX gives iSymphony (§6.4): `CDRDBUSER`/`CDRDBPASS` of
    /// freepbx_settings when set, else `AMPDBUSER`/`AMPDBPASS` of freepbx.conf. None: unknown
    /// (freepbx.conf unreadable), never the agent's own login.
    pub cdr_username: Option<String>,
    pub cdr_password: Option<Secret>,
    /// `freepbx_settings` keyword → value (the keys the sync uses).
    pub settings: BTreeMap<String, String>,
    pub modules: Vec<ModuleRow>,
    /// `admin.need_reload`, when present.
    pub need_reload: Option<String>,
    pub users: Vec<UserRow>,
    pub devices: Vec<DeviceRow>,
    /// `sip` rows with keyword `dial` or `sipdriver`.
    pub sip: Vec<KeywordRow>,
    /// `iax` / `dahdi` rows with keyword `dial`.
    pub iax: Vec<KeywordRow>,
    pub dahdi: Vec<KeywordRow>,
    pub queues: Vec<QueueRow>,
    /// `queues_details` rows with keyword `eventwhencalled` / `eventmemberstatus`.
    pub queue_details: Vec<KeywordRow>,
    pub conferences: Vec<ConferenceRow>,
    /// The `parkplus` default lot (`defaultlot='yes'`), when the table has one.
    pub parking_lot: Option<ParkingLotRow>,
    /// Legacy (≤ 2.10) `parkinglot` key/value rows.
    pub legacy_parking: Vec<KeywordRow>,
    pub userman_users: Vec<UsermanUser>,
    pub userman_user_settings: Vec<UsermanSetting>,
    pub userman_groups: Vec<UsermanGroup>,
    pub userman_group_settings: Vec<UsermanSetting>,
    pub ampusers: Vec<AmpUser>,
    pub cxpanel_users: Vec<CxUser>,
    pub cxpanel_queues: Vec<CxQueue>,
    pub cxpanel_conference_rooms: Vec<CxConferenceRoom>,
    pub cxpanel_phone_numbers: Vec<CxPhoneNumber>,
    /// `cxpanel_managed_items` (empty when the table is absent).
    pub managed_items: Vec<ManagedItem>,
    /// The cxpanel module settings, from whichever layout the system has.
    pub cx_settings: Option<CxSettings>,
    /// Mailboxes of voicemail.conf, in file order.
    pub voicemail: Vec<Mailbox>,
    /// Set when the mailboxes are not known (file missing, unreadable, empty, a limit
    /// exceeded, …): why, naming the file. E-mail addresses are then left as they are.
    pub voicemail_unknown: Option<String>,
    /// The unknown voicemail.conf is an error of the pass (a limit, a non-text file), not
    /// only a warning (a missing or unreadable file).
    pub voicemail_error: bool,
    /// A required `#include` of voicemail.conf is missing (why, naming it): the mailboxes
    /// read are known; only deletions of e-mail addresses are held.
    #[serde(default)]
    pub voicemail_missing_include: Option<String>,
    /// Problems met while reading (missing columns, unreadable files).
    pub warnings: Vec<String>,
    /// Secrets were replaced by `***` (an export without `--include-secrets`): the mapping
    /// then pushes no password hashes.
    pub redacted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleRow {
    pub modulename: String,
    pub version: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRow {
    pub extension: String,
    pub name: String,
    /// Voicemail context, or `novm`.
    pub voicemail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRow {
    pub id: String,
    pub tech: String,
    pub dial: String,
    pub devicetype: String,
    pub user: String,
    pub description: String,
}

/// A row of a keyword/value table (`sip`, `iax`, `dahdi`, `queues_details`, `parkinglot`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeywordRow {
    pub id: String,
    pub keyword: String,
    pub data: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueRow {
    pub extension: String,
    pub descr: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConferenceRow {
    pub exten: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParkingLotRow {
    pub id: String,
    pub name: String,
    pub parkext: String,
    pub parkpos: String,
    pub numslots: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsermanUser {
    pub id: i64,
    pub auth: String,
    pub username: String,
    pub password: Secret,
    pub displayname: String,
    pub fname: String,
    pub lname: String,
    pub email: String,
    pub cell: String,
    pub work: String,
    pub home: String,
    pub default_extension: String,
}

/// A `userman_users_settings` (id = uid) or `userman_groups_settings` (id = gid) row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsermanSetting {
    pub id: i64,
    pub module: String,
    pub key: String,
    pub val: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsermanGroup {
    pub id: i64,
    pub priority: i64,
    /// Member user ids (the `users` JSON array).
    pub users: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AmpUser {
    pub username: String,
    pub password_sha1: Secret,
    pub sections: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxUser {
    pub user_id: String,
    pub display_name: String,
    pub peer: String,
    pub add_extension: bool,
    pub full: bool,
    pub add_user: bool,
    pub hashed_password: Secret,
    pub initial_password: Secret,
    pub auto_answer: bool,
    pub parent_user_id: String,
    pub password_dirty: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxQueue {
    pub queue_id: String,
    pub display_name: String,
    pub add_queue: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxConferenceRoom {
    pub conference_room_id: String,
    pub display_name: String,
    pub add_conference_room: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxPhoneNumber {
    pub user_id: String,
    pub phone_number: String,
    pub kind: String,
}

/// Where the cxpanel settings were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CxSettingsLayout {
    /// `kvstore_FreePBX_modules_Cxpanel` (cxpanel 16.0.4+).
    #[default]
    Kvstore,
    /// `cxpanel_server`, `cxpanel_voicemail_agent`, … (cxpanel ≤ 16.0.2, 17.0.1).
    Tables,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxSettings {
    pub layout: CxSettingsLayout,
    pub server: Option<CxServerSettings>,
    pub voicemail_agent: Option<CxAgentSettings>,
    pub recording_agent: Option<CxAgentSettings>,
}

/// `settings_server` / `cxpanel_server`. Missing keys take the cxpanel install defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxServerSettings {
    /// iSymphony core-server slug.
    pub name: String,
    pub asterisk_host: String,
    pub client_host: String,
    pub client_port: u16,
    pub client_use_ssl: bool,
    pub api_host: String,
    pub api_port: u16,
    pub api_username: String,
    pub api_password: Secret,
    pub api_use_ssl: bool,
    pub sync_with_userman: bool,
    pub clean_unknown_items: bool,
}

impl Default for CxServerSettings {
    fn default() -> Self {
        CxServerSettings {
            name: "default".into(),
            asterisk_host: "localhost".into(),
            client_host: String::new(),
            client_port: 58080,
            client_use_ssl: false,
            api_host: "localhost".into(),
            api_port: 58080,
            api_username: crate::config::DEFAULT_API_USERNAME.into(),
            api_password: Secret::new(crate::config::DEFAULT_API_PASSWORD),
            api_use_ssl: false,
            sync_with_userman: true,
            clean_unknown_items: true,
        }
    }
}

/// `settings_voicemail_agent` / `settings_recording_agent` (or their tables).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CxAgentSettings {
    pub identifier: String,
    pub directory: String,
    pub resource_host: String,
    pub resource_extension: String,
    /// Recording agent only.
    pub file_name_mask: String,
}

/// One mailbox line of voicemail.conf.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mailbox {
    pub context: String,
    pub mailbox: String,
    pub name: String,
    /// Field 3 split on `|` (and `,` on hand-edited files), trimmed, empties dropped.
    pub emails: Vec<String>,
}

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error("{source} (at {at})")]
    Invalid {
        at: String,
        source: serde_json::Error,
    },
    #[error("snapshot format {0} is newer than this agent understands ({SNAPSHOT_FORMAT})")]
    TooNew(u32),
}

impl Snapshot {
    /// Whether a table existed in the database.
    pub fn has_table(&self, name: &str) -> bool {
        self.tables.contains(name)
    }

    /// A copy with every password, hash and secret replaced by `***` (empty ones stay empty,
    /// so the export still shows which accounts have none).
    pub fn redacted(&self) -> Snapshot {
        fn r(s: &mut Secret) {
            if !s.is_empty() {
                *s = Secret::new(REDACTED);
            }
        }
        let mut s = self.clone();
        s.redacted = true;
        if let Some(p) = s.cdr_password.as_mut() {
            r(p);
        }
        s.userman_users.iter_mut().for_each(|u| r(&mut u.password));
        s.ampusers.iter_mut().for_each(|u| r(&mut u.password_sha1));
        for u in &mut s.cxpanel_users {
            r(&mut u.hashed_password);
            r(&mut u.initial_password);
        }
        if let Some(server) = s.cx_settings.as_mut().and_then(|c| c.server.as_mut()) {
            r(&mut server.api_password);
        }
        s
    }

    /// The export JSON: redacted unless `include_secrets`.
    pub fn to_json(&self, include_secrets: bool) -> Result<String, serde_json::Error> {
        if include_secrets {
            serde_json::to_string_pretty(self)
        } else {
            serde_json::to_string_pretty(&self.redacted())
        }
    }

    /// Parse an export; the error names the offending field.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let snap: Snapshot = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            SnapshotError::Invalid {
                at,
                source: e.into_inner(),
            }
        })?;
        if snap.format > SNAPSHOT_FORMAT {
            return Err(SnapshotError::TooNew(snap.format));
        }
        Ok(snap)
    }

    /// Read an export written by `--export-snapshot`.
    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        let text = std::fs::read_to_string(path)?;
        Snapshot::from_json(&text)
    }
}
