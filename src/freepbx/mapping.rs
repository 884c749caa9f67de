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

use super::db::parse_flag;
use super::files::split_emails;
use super::snapshot::*;
use crate::config::Config;
use crate::model::*;
use crate::secret::Secret;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;

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

/// Which rule set selects the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    CxTables,
    CxUserman,
    NoCxpanel,
}

/// The mode cxpanel would run in for this snapshot.
pub fn mode(snap: &Snapshot) -> Mode {
    if !snap.has_table("cxpanel_users") {
        return Mode::NoCxpanel;
    }
    let sync_with_userman = snap
        .cx_settings
        .as_ref()
        .and_then(|c| c.server.as_ref())
        .map(|s| s.sync_with_userman)
        .unwrap_or_else(|| CxServerSettings::default().sync_with_userman);
    if sync_with_userman && snap.has_table("userman_users") {
        Mode::CxUserman
    } else {
        Mode::CxTables
    }
}

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

    fn user_setting(&self, uid: i64, module: &str, key: &str) -> Option<&'a str> {
        self.user_settings.get(&(uid, module, key)).copied()
    }

    fn administrators(&mut self) -> BTreeMap<String, AdministratorSpec> {
        let mut out = BTreeMap::new();
        let keep = |sections: &str| sections.contains('*') || sections.contains("cxpanel");
        for a in &self.snap.ampusers {
            if !a.username.is_empty() && keep(&a.sections) {
                out.insert(a.username.clone(), admin(&a.username, &a.password_sha1));
            }
        }
        // Userman GUI users: pbx_admin → all sections; pbx_login → their module list.
        let mut settings: FastMap<i64, (bool, bool, String)> = FastMap::default();
        for s in &self.snap.userman_user_settings {
            if s.module != "global" {
                continue;
            }
            let e = settings.entry(s.id).or_default();
            match s.key.as_str() {
                "pbx_admin" => e.0 = parse_flag(&s.val),
                "pbx_login" => e.1 = parse_flag(&s.val),
                "pbx_modules" => {
                    e.2 = serde_json::from_str::<Vec<String>>(&s.val)
                        .map(|v| v.join(";"))
                        .unwrap_or_default()
                }
                _ => {}
            }
        }
        for u in &self.snap.userman_users {
            let Some((pbx_admin, pbx_login, modules)) = settings.get(&u.id) else {
                continue;
            };
            let sections = if *pbx_admin {
                "*"
            } else if *pbx_login {
                modules.as_str()
            } else {
                continue;
            };
            if !u.username.is_empty() && keep(sections) {
                out.insert(u.username.clone(), admin(&u.username, &u.password));
            }
        }
        out
    }

    /// The dial string of an extension's device, from the core tables (§3.2, §3.3).
    fn peer(&self, dev: Option<&DeviceRow>, dials: &Dials) -> String {
        let Some(dev) = dev else {
            // A virtual extension (or a user without a device) has nothing to dial.
            return String::new();
        };
        let id = dev.id.as_str();
        let tech = dev.tech.to_ascii_lowercase();
        let keyword = match tech.as_str() {
            "sip" | "pjsip" => dials.sip.get(id),
            "iax2" | "iax" => dials.iax.get(id),
            "dahdi" | "zap" => dials.dahdi.get(id),
            _ => None,
        };
        if let Some(d) = keyword.map(|s| s.trim()).filter(|s| !s.is_empty()) {
            return d.to_string();
        }
        if !dev.dial.trim().is_empty() {
            return dev.dial.trim().to_string();
        }
        // Core fills a blank dial with UPPER(tech)/<id>; the sip driver keyword tells which
        // channel driver a `sip`-table device really uses.
        let tech = match (tech.as_str(), dials.driver.get(id).map(String::as_str)) {
            ("sip" | "pjsip", Some("chan_pjsip")) => "pjsip".to_string(),
            ("sip" | "pjsip", Some("chan_sip")) => "sip".to_string(),
            ("custom", _) | ("", _) => return String::new(),
            (t, _) => t.to_string(),
        };
        format!("{}/{}", tech.to_ascii_uppercase(), dev.id)
    }

    fn extensions(&mut self) -> BTreeMap<String, ExtensionSpec> {
        let devices: FastMap<&str, &DeviceRow> = super::source_rules::device_index(self.snap)
            .into_iter()
            .collect();
        let dials = Dials::new(self.snap);
        // Built as a sorted Vec and bulk-loaded: much cheaper than 10k BTreeMap inserts.
        let mut out = Vec::with_capacity(self.users.len());
        for (&ext, u) in &self.users {
            let auto_answer = match self.mode {
                Mode::NoCxpanel if !self.cfg.sync.default_add_extensions => continue,
                Mode::NoCxpanel => self.cfg.sync.default_auto_answer,
                // No cxpanel row yet: cxpanel's next sync would add one (add_extension=1,
                // auto_answer=0).
                _ => match self.cx_users.get(ext) {
                    Some(c) if !c.add_extension => continue,
                    Some(c) => c.auto_answer,
                    None => false,
                },
            };
            let display = display_name(&u.name, ext);
            let peer = self.peer(devices.get(ext).copied(), &dials);
            let vm = u.voicemail.trim();
            out.push((
                ext.to_string(),
                ExtensionSpec {
                    extension: ext.to_string(),
                    display_name: display.clone(),
                    auto_answer,
                    agent_interface: peer.clone(),
                    peer,
                    agent_name: display,
                    agent_location: format!("Local/{ext}@from-queue/n"),
                    voice_mail_context: if vm.is_empty() || vm.eq_ignore_ascii_case("novm") {
                        "default".into()
                    } else {
                        vm.to_string()
                    },
                    voice_mail_box: ext.to_string(),
                },
            ));
        }
        out.into_iter().collect()
    }

    /// Voicemail e-mail addresses of an extension (voicemail module `getMailbox`: the user's
    /// context first, else the first context holding the mailbox).
    fn mailbox_emails(&self, ext: &str, index: &MailboxIndex<'a>) -> Vec<String> {
        let ctx = self
            .users
            .get(ext)
            .map(|u| u.voicemail.trim())
            .unwrap_or("");
        index
            .by_ctx
            .get(&(ctx, ext))
            .or_else(|| index.first.get(ext))
            .map(|m| m.emails.clone())
            .unwrap_or_default()
    }

    fn cx_table_users(
        &mut self,
        extensions: &BTreeMap<String, ExtensionSpec>,
    ) -> BTreeMap<String, UserSpec> {
        let index = MailboxIndex::new(self.snap);
        let mut phones: FastMap<&str, Vec<PhoneSpec>> = FastMap::default();
        for p in &self.snap.cxpanel_phone_numbers {
            phones
                .entry(p.user_id.as_str())
                .or_default()
                .push(PhoneSpec {
                    kind: p.kind.clone(),
                    number: p.phone_number.clone(),
                });
        }
        // Bindings: parent_user_id of each synced extension (self when cxpanel has no row).
        let mut bound: FastMap<&str, Vec<String>> = FastMap::default();
        for ext in extensions.keys() {
            let parent = match self.cx_users.get(ext.as_str()) {
                Some(c) => c.parent_user_id.as_str(),
                None => ext.as_str(),
            };
            if !parent.is_empty() {
                bound.entry(parent).or_default().push(ext.clone());
            }
        }
        let mut out = BTreeMap::new();
        for (&ext, u) in &self.users {
            let (password, full) = match self.cx_users.get(ext) {
                Some(c) if !c.add_user => continue,
                Some(c) => (
                    PasswordSpec {
                        hash: non_empty(&c.hashed_password),
                        dirty: c.password_dirty,
                    },
                    c.full,
                ),
                // cxpanel would create the row with a generated password we cannot know.
                None => (PasswordSpec::default(), true),
            };
            let (first_name, last_name) = split_name(&display_name(&u.name, ext));
            let mut exts = bound.remove(ext).unwrap_or_default();
            exts.sort();
            out.insert(
                ext.to_string(),
                UserSpec {
                    username: ext.to_string(),
                    password,
                    full,
                    enabled: true,
                    first_name,
                    last_name,
                    emails: self.mailbox_emails(ext, &index),
                    phones: phones.remove(ext).unwrap_or_default(),
                    extensions: exts,
                },
            );
        }
        out
    }

    /// cxpanel's `getCombinedModuleSettingByID(uid, 'cxpanel', 'add')`: the user's own value,
    /// else the first group (by priority) that has one; None when nobody says.
    fn combined_add(&self, uid: i64, groups: &[&UsermanGroup]) -> Option<&'a str> {
        if let Some(v) = self.user_setting(uid, "cxpanel", "add") {
            return Some(v);
        }
        groups
            .iter()
            .filter(|g| g.users.contains(&uid))
            .find_map(|g| {
                self.snap
                    .userman_group_settings
                    .iter()
                    .find(|s| s.id == g.id && s.module == "cxpanel" && s.key == "add")
                    .map(|s| s.val.as_str())
            })
    }

    /// Logins from User Manager. `cx`: selection by the cxpanel `add` setting and dirty flags
    /// from `password_dirty`; otherwise (no cxpanel module) every user with a password.
    fn userman_users(
        &mut self,
        extensions: &BTreeMap<String, ExtensionSpec>,
        cx: bool,
    ) -> BTreeMap<String, UserSpec> {
        let mut groups: Vec<&UsermanGroup> = self.snap.userman_groups.iter().collect();
        groups.sort_by_key(|g| (g.priority, g.id));
        let mut users: Vec<&UsermanUser> = self.snap.userman_users.iter().collect();
        users.sort_by_key(|u| u.id);
        let mut out: Vec<(String, UserSpec)> = Vec::with_capacity(users.len());
        let mut seen: FastSet<&str> = FastSet::default();
        // default_extension → (user id, username) that claimed it first (lowest id).
        let mut claimed: FastMap<&str, (i64, &str)> = FastMap::default();
        for u in users {
            if u.username.is_empty() {
                continue;
            }
            let password = if cx {
                if self.combined_add(u.id, &groups).map(str::trim) != Some("1") {
                    continue;
                }
                PasswordSpec {
                    hash: non_empty(&u.password),
                    // cxpanel treats a missing flag as dirty (and writes '1' back).
                    dirty: self
                        .user_setting(u.id, "cxpanel", "password_dirty")
                        .map(parse_flag)
                        .unwrap_or(true),
                }
            } else {
                match non_empty(&u.password) {
                    // No cxpanel flag to consult: keep the panel password in step with
                    // userman whenever they differ.
                    Some(hash) => PasswordSpec {
                        hash: Some(hash),
                        dirty: true,
                    },
                    None => continue,
                }
            };
            if !seen.insert(u.username.as_str()) {
                self.warnings.push(format!(
                    "user manager has two users named {:?} (directory {:?}); only the \
                     first (lowest id) is synced",
                    u.username, u.auth
                ));
                continue;
            }
            let (first_name, last_name) = if !u.displayname.trim().is_empty() {
                split_name(u.displayname.trim())
            } else {
                (u.fname.trim().to_string(), u.lname.trim().to_string())
            };
            let mut phones = Vec::new();
            for (kind, number) in [("Cell", &u.cell), ("Work", &u.work), ("Home", &u.home)] {
                if !number.trim().is_empty() {
                    phones.push(PhoneSpec {
                        kind: kind.into(),
                        number: number.trim().to_string(),
                    });
                }
            }
            let mut exts = Vec::new();
            let de = u.default_extension.trim();
            if !de.is_empty() && de != "none" && extensions.contains_key(de) {
                match claimed.get(de) {
                    Some((_, owner)) => self.warnings.push(format!(
                        "extension {de} is the default extension of user manager users \
                         {owner:?} and {:?}; it is bound to {owner:?} (lowest user id)",
                        u.username
                    )),
                    None => {
                        claimed.insert(de, (u.id, u.username.as_str()));
                        exts.push(de.to_string());
                    }
                }
            }
            out.push((
                u.username.clone(),
                UserSpec {
                    username: u.username.clone(),
                    password,
                    full: if cx {
                        true
                    } else {
                        self.cfg.sync.default_full_users
                    },
                    enabled: true,
                    first_name,
                    last_name,
                    emails: split_emails(&u.email),
                    phones,
                    extensions: exts,
                },
            ));
        }
        out.into_iter().collect()
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

fn admin(username: &str, password: &Secret) -> AdministratorSpec {
    AdministratorSpec {
        user_name: username.to_string(),
        // cxpanel compares the stored hash with the server's on every run.
        password: PasswordSpec {
            hash: non_empty(password),
            dirty: true,
        },
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

/// `dial` (and `sipdriver`) keywords of the per-technology device tables, by device id.
struct Dials<'a> {
    sip: FastMap<&'a str, &'a str>,
    iax: FastMap<&'a str, &'a str>,
    dahdi: FastMap<&'a str, &'a str>,
    driver: FastMap<&'a str, String>,
}

impl<'a> Dials<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let dial = |rows: &'a [KeywordRow]| {
            rows.iter()
                .filter(|r| r.keyword == "dial")
                .map(|r| (r.id.as_str(), r.data.as_str()))
                .collect::<FastMap<_, _>>()
        };
        Dials {
            sip: dial(&snap.sip),
            iax: dial(&snap.iax),
            dahdi: dial(&snap.dahdi),
            driver: snap
                .sip
                .iter()
                .filter(|r| r.keyword == "sipdriver")
                .map(|r| (r.id.as_str(), r.data.trim().to_ascii_lowercase()))
                .collect(),
        }
    }
}

struct MailboxIndex<'a> {
    by_ctx: FastMap<(&'a str, &'a str), &'a Mailbox>,
    first: FastMap<&'a str, &'a Mailbox>,
}

impl<'a> MailboxIndex<'a> {
    fn new(snap: &'a Snapshot) -> Self {
        let mut by_ctx = FastMap::default();
        let mut first = FastMap::default();
        for m in &snap.voicemail {
            by_ctx
                .entry((m.context.as_str(), m.mailbox.as_str()))
                .or_insert(m);
            first.entry(m.mailbox.as_str()).or_insert(m);
        }
        MailboxIndex { by_ctx, first }
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
