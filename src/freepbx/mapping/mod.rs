//! Snapshot → Desired: the cxpanel module's mapping rules, with two of its flaws fixed
//! (docs/README-freepbx.md, "Mapping (what iSymphony gets)").
//!
//! Three modes, chosen as the cxpanel module chooses:
//! - **cxpanel tables** (`cxpanel_users` exists, `sync_with_userman` off or no userman): the
//!   cxpanel tables select extensions, logins, queues and rooms and carry flags, password
//!   hashes and bindings.
//! - **userman** (`cxpanel_users` exists, `sync_with_userman` on, userman installed): logins
//!   are User Manager users whose combined `cxpanel/add` setting is `1`.
//! - **no cxpanel module**: the `[sync] default_*` options decide; logins come from userman
//!   users that have a password (FreePBX has no other hash to give).
//!
//! In every mode display names and dial strings come from the core tables on every read
//! (`users.name`, `devices`/`sip` dial), never from cxpanel's stale copies.
//!
//! Logins and administrators are built in `mapping/users.rs`, extensions (dial strings,
//! voicemail e-mail) in `mapping/extensions.rs`; the rest (settings, servers, queues, rooms,
//! parking) here.

use super::db::parse_flag;
use super::snapshot::*;
pub use super::source_rules::{mode, Mode};
use super::voicemail::split_emails;
use crate::config::Config;
use crate::model::*;
use crate::secret::Secret;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;

mod extensions;
mod users;

/// FNV-1a. The maps below hold 10k+ short keys from our own database read each pass; SipHash's
/// flooding resistance buys nothing here and costs a noticeable share of the mapping time.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        // splitmix64 finaliser: FNV's high bits are weak, and hashbrown's probe tags use them.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<Fnv>>;

/// The AMI account the cxpanel module creates for iSymphony (§3.8, §6.4).
pub const AMI_USERNAME: &str = "cxpanel";
pub const AMI_PASSWORD: &str = "cxmanager*con";
pub const AMI_PORT: i64 = 5038;
/// cxpanel sends 3306 whatever AMPDBPORT says.
pub const CDR_PORT: i64 = 3306;
pub const FROM_INTERNAL: &str = "from-internal";
pub const DEFAULT_RECORDING_MASK: &str =
    "${Tag(exten)}-${DstExtension}-${SrcExtension}-${Date(yyyyMMdd)}-${Time(HHmmss)}-${CDRUniqueId}";

/// Map a snapshot to the desired iSymphony state.
pub fn desired(snap: &Snapshot, cfg: &Config) -> Desired {
    let mut m = Mapper::new(snap, cfg);
    m.run()
}

struct Mapper<'a> {
    snap: &'a Snapshot,
    cfg: &'a Config,
    mode: Mode,
    warnings: Vec<String>,
    /// users rows by extension (first row wins).
    users: BTreeMap<&'a str, &'a UserRow>,
    cx_users: FastMap<&'a str, &'a CxUser>,
    /// userman_users_settings by (uid, module, key).
    user_settings: FastMap<(i64, &'a str, &'a str), &'a str>,
}

impl<'a> Mapper<'a> {
    fn new(snap: &'a Snapshot, cfg: &'a Config) -> Self {
        let mut warnings = snap.warnings.clone();
        let mut users = BTreeMap::new();
        for u in &snap.users {
            if u.extension.is_empty() {
                continue;
            }
            if users.contains_key(u.extension.as_str()) {
                warnings.push(format!(
                    "extension {} appears twice in the users table; the first row is used",
                    u.extension
                ));
            } else {
                users.insert(u.extension.as_str(), u);
            }
        }
        let cx_users = snap
            .cxpanel_users
            .iter()
            .map(|c| (c.user_id.as_str(), c))
            .collect();
        let user_settings = snap
            .userman_user_settings
            .iter()
            .map(|s| ((s.id, s.module.as_str(), s.key.as_str()), s.val.as_str()))
            .collect();
        Mapper {
            snap,
            cfg,
            mode: mode(snap),
            warnings,
            users,
            cx_users,
            user_settings,
        }
    }

    fn run(&mut self) -> Desired {
        if self.snap.redacted {
            self.warnings.push(
                "this snapshot was exported without secrets: password hashes are not pushed \
                 and the CDR password is unknown"
                    .into(),
            );
        }
        let server = self.server_settings();
        let slug = crate::model::core_server_slug(
            self.cfg.isymphony.core_server.as_deref(),
            Some(&server.name),
        );
        let recording_agent = self.recording_agent();
        let mut d = Desired {
            core_server: CoreServerSpec {
                slug: slug.clone(),
                name: slug,
            },
            asterisk: AsteriskSpec {
                originating_context: FROM_INTERNAL.into(),
                redirecting_context: FROM_INTERNAL.into(),
                music_on_hold_class: "default".into(),
            },
            voicemail_agent: Some(self.voicemail_agent()),
            pbx_server: Some(self.pbx_server(&server, &recording_agent.identifier)),
            recording_agent: Some(recording_agent),
            administrators: self.administrators(),
            extensions: self.extensions(),
            ..Desired::default()
        };
        d.users = match self.mode {
            Mode::CxTables => self.cx_table_users(&d.extensions),
            Mode::CxUserman => self.userman_users(&d.extensions, true),
            Mode::NoCxpanel if self.cfg.sync.default_add_users => {
                self.userman_users(&d.extensions, false)
            }
            Mode::NoCxpanel => BTreeMap::new(),
        };
        d.queues = self.queues();
        d.conference_rooms = self.conference_rooms();
        d.parking_lot = self.parking_lot();
        super::source_rules::freeze_unknown_sources(self.snap, self.mode, &mut d);
        d.warnings = std::mem::take(&mut self.warnings);
        d
    }

    fn setting(&self, key: &str) -> Option<&'a str> {
        self.snap
            .settings
            .get(key)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn spool_dir(&self) -> String {
        self.setting("ASTSPOOLDIR")
            .unwrap_or("/var/spool/asterisk")
            .trim_end_matches('/')
            .to_string()
    }

    fn server_settings(&mut self) -> CxServerSettings {
        let found = self
            .snap
            .cx_settings
            .as_ref()
            .and_then(|c| c.server.clone());
        if found.is_none() && self.mode != Mode::NoCxpanel {
            self.warnings.push(
                "the cxpanel module is installed but its server settings are missing; \
                 using the module's install defaults"
                    .into(),
            );
        }
        found.unwrap_or_default()
    }

    fn voicemail_agent(&self) -> AgentSpec {
        let cx = self
            .snap
            .cx_settings
            .as_ref()
            .and_then(|c| c.voicemail_agent.as_ref());
        let d =
            |v: Option<&String>, dflt: String| v.filter(|s| !s.is_empty()).cloned().unwrap_or(dflt);
        AgentSpec {
            identifier: d(cx.map(|c| &c.identifier), "local-vm".into()),
            root_path: d(
                cx.map(|c| &c.directory),
                format!("{}/voicemail", self.spool_dir()),
            ),
            resource_host: d(cx.map(|c| &c.resource_host), self.snap.hostname.clone()),
            resource_extension: d(cx.map(|c| &c.resource_extension), "wav".into()),
        }
    }

    fn recording_agent(&self) -> RecordingAgentSpec {
        let cx = self
            .snap
            .cx_settings
            .as_ref()
            .and_then(|c| c.recording_agent.as_ref());
        let d =
            |v: Option<&String>, dflt: String| v.filter(|s| !s.is_empty()).cloned().unwrap_or(dflt);
        // cxpanel 16.0.6 stores its default mask from a single-quoted PHP string, i.e. with
        // a literal backslash before every `$`; iSymphony wants the plain mask.
        let mask =
            d(cx.map(|c| &c.file_name_mask), DEFAULT_RECORDING_MASK.into()).replace("\\$", "$");
        RecordingAgentSpec {
            identifier: d(cx.map(|c| &c.identifier), "local-rec".into()),
            root_path: d(
                cx.map(|c| &c.directory),
                format!("{}/monitor", self.spool_dir()),
            ),
            resource_host: d(cx.map(|c| &c.resource_host), self.snap.hostname.clone()),
            resource_extension: d(cx.map(|c| &c.resource_extension), "wav".into()),
            file_name_mask: mask,
        }
    }

    fn pbx_server(&mut self, server: &CxServerSettings, recording_id: &str) -> PbxServerSpec {
        let (cdr_username, cdr_password) =
            super::source_rules::cdr_login(self.cfg, self.snap, &mut self.warnings);
        let brand = self.setting("DASHBOARD_FREEPBX_BRAND").unwrap_or("FreePBX");
        let host = if server.asterisk_host.is_empty() {
            "localhost".to_string()
        } else {
            server.asterisk_host.clone()
        };
        PbxServerSpec {
            display_name: format!("{brand} - {host}"),
            host: host.clone(),
            port: AMI_PORT,
            username: AMI_USERNAME.into(),
            password: Secret::new(AMI_PASSWORD),
            cdr_host: host,
            cdr_port: CDR_PORT,
            cdr_username,
            cdr_password,
            recording_agent_identifier: recording_id.to_string(),
        }
    }

    fn event_flag_warnings(&mut self, queue: &str) {
        for d in &self.snap.queue_details {
            if d.id == queue && d.data.trim().eq_ignore_ascii_case("no") {
                self.warnings.push(format!(
                    "queue {queue} has {}=no: iSymphony gets no member/caller events for it \
                     (set it to yes in FreePBX)",
                    d.keyword
                ));
            }
        }
    }

    fn queues(&mut self) -> BTreeMap<String, QueueSpec> {
        let cx: FastMap<&str, &CxQueue> = self
            .snap
            .cxpanel_queues
            .iter()
            .map(|q| (q.queue_id.as_str(), q))
            .collect();
        let mut out = BTreeMap::new();
        for q in &self.snap.queues {
            let id = q.extension.trim();
            if id.is_empty() || out.contains_key(id) {
                continue;
            }
            let add = match self.mode {
                Mode::NoCxpanel => self.cfg.sync.default_add_queues,
                _ => cx.get(id).map(|c| c.add_queue).unwrap_or(true),
            };
            if !add {
                continue;
            }
            self.event_flag_warnings(id);
            out.insert(
                id.to_string(),
                QueueSpec {
                    identifier: id.to_string(),
                    display_name: display_name(&q.descr, id),
                    destination_extension: id.to_string(),
                    destination_context: FROM_INTERNAL.into(),
                },
            );
        }
        out
    }

    fn conference_rooms(&mut self) -> BTreeMap<String, ConferenceRoomSpec> {
        let cx: FastMap<&str, &CxConferenceRoom> = self
            .snap
            .cxpanel_conference_rooms
            .iter()
            .map(|q| (q.conference_room_id.as_str(), q))
            .collect();
        let mut out = BTreeMap::new();
        for c in &self.snap.conferences {
            let id = c.exten.trim();
            if id.is_empty() || out.contains_key(id) {
                continue;
            }
            let add = match self.mode {
                Mode::NoCxpanel => self.cfg.sync.default_add_conference_rooms,
                _ => cx.get(id).map(|c| c.add_conference_room).unwrap_or(true),
            };
            if add {
                out.insert(
                    id.to_string(),
                    ConferenceRoomSpec {
                        identifier: id.to_string(),
                        name: display_name(&c.description, id),
                        destination_extension: id.to_string(),
                        destination_context: FROM_INTERNAL.into(),
                    },
                );
            }
        }
        out
    }

    fn parking_lot(&self) -> Option<ParkingLotSpec> {
        let disabled = self
            .snap
            .modules
            .iter()
            .any(|m| m.modulename == "parking" && !m.enabled);
        if disabled {
            return None;
        }
        let ext = if self.snap.has_table("parkplus") {
            self.snap
                .parking_lot
                .as_ref()
                .map(|l| l.parkext.trim().to_string())
        } else if self.snap.has_table("parkinglot") {
            let get = |k: &str| {
                self.snap
                    .legacy_parking
                    .iter()
                    .find(|r| r.keyword == k)
                    .map(|r| r.data.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            get("parkingenabled")?;
            get("parkext")
        } else {
            return None;
        };
        Some(ParkingLotSpec {
            identifier: "default".into(),
            name: "Main".into(),
            destination_extension: ext.filter(|e| !e.is_empty()).unwrap_or_else(|| "70".into()),
            destination_context: FROM_INTERNAL.into(),
        })
    }
}

/// The stored hash, or None when there is none (empty, or redacted in an export).
fn non_empty(s: &Secret) -> Option<Secret> {
    let t = s.expose().trim();
    (!t.is_empty() && t != REDACTED).then(|| Secret::new(t))
}

/// The name, or the number when the name is empty (cxpanel's rule for extensions; ours for
/// queues and rooms too).
fn display_name(name: &str, number: &str) -> String {
    let n = name.trim();
    if n.is_empty() {
        number.to_string()
    } else {
        n.to_string()
    }
}

/// First name = up to the first space, last name = the rest.
pub fn split_name(name: &str) -> (String, String) {
    match name.trim().split_once(' ') {
        Some((first, last)) => (first.to_string(), last.trim().to_string()),
        None => (name.trim().to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_first_space() {
        assert_eq!(split_name("Anna"), ("Anna".into(), "".into()));
        assert_eq!(
            split_name("Jean Luc O'Neil"),
            ("Jean".into(), "Luc O'Neil".into())
        );
    }

    #[test]
    fn empty_snapshot_maps_to_defaults() {
        let d = desired(&Snapshot::default(), &Config::default());
        assert_eq!(d.core_server.slug, "default");
        assert!(d.extensions.is_empty());
        assert!(d.parking_lot.is_none());
        let rec = d.recording_agent.unwrap();
        assert_eq!(rec.root_path, "/var/spool/asterisk/monitor");
        assert_eq!(rec.file_name_mask, DEFAULT_RECORDING_MASK);
    }
}
