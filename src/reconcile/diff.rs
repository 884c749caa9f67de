//! `diff(&Desired, &Observed, &Ownership) -> Plan`: the pure heart of a pass (no I/O, no clock,
//! no randomness).
//!
//! It compares exactly the fields reference/freepbx-source.md §6 compares, leaves create-only
//! fields (`restricted`, `altOriginationMethod`, `agentPenalty`, `agentPaused`,
//! `originateTimeoutOverride`) alone on update, and relies on the tolerant wire types for the
//! PHP client's loose equality (null == "", "5038" == 5038). Objects are matched by natural key;
//! a server object with a FreePBX object's key is adopted (updated, never duplicated). Only
//! managed objects are deleted. Sub-resources (contact, e-mails, phones, managing user) are
//! compared only where [`Observed`] holds them, i.e. where [`sub_reads`] asked for them.

use super::facts::{fingerprint, hash_of_hash, Effect};
use super::ownership::Ownership;
use super::passwords::{create_password, password_rule, unverifiable_warning, Pw};
use super::plan::{quote, stage_of, Action, Change, Fingerprint, Kind, Method, Op, Plan, Request};
use crate::api::confirm::Confirm;
use crate::api::paths;
use crate::api::types::*;
use crate::model::{Desired, PhoneSpec, UserSpec};
use crate::secret::Secret;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The iSymphony side as read by one pass.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// None: the core server does not exist (everything below is then empty).
    pub core_server: Option<CoreServer>,
    pub asterisk: Option<AsteriskSettings>,
    /// None: no such agent on the server.
    pub voicemail_agent: Option<VoicemailAgent>,
    pub voicemail_identifiers: Vec<String>,
    pub recording_agent: Option<RecordingAgent>,
    pub pbx_servers: Vec<PbxServer>,
    pub administrators: Vec<Administrator>,
    pub extensions: Vec<Extension>,
    pub users: Vec<User>,
    pub queues: Vec<Queue>,
    pub conference_rooms: Vec<ConferenceRoom>,
    pub parking_lots: Vec<ParkingLot>,
    /// By user id; present only when read this pass (inner None: no contact record yet).
    pub contacts: HashMap<String, Option<Contact>>,
    pub emails: HashMap<String, Vec<EmailAddress>>,
    pub phones: HashMap<String, Vec<PhoneNumber>>,
    /// By extension id; present only when read (inner None: no managing user).
    pub managing_users: HashMap<String, Option<User>>,
}

/// Sub-resources a pass must read (ids of users / extensions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubReads {
    pub contacts: Vec<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub bindings: Vec<String>,
}

impl SubReads {
    pub fn len(&self) -> usize {
        self.contacts.len() + self.emails.len() + self.phones.len() + self.bindings.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn contact_key(uid: &str) -> String {
    format!("contact/{uid}")
}
fn emails_key(uid: &str) -> String {
    format!("emails/{uid}")
}
fn phones_key(uid: &str) -> String {
    format!("phones/{uid}")
}
fn binding_key(ext_id: &str) -> String {
    format!("binding/{ext_id}")
}
pub(crate) fn norm_email(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}
pub(crate) fn phone_value(kind: &str, number: &str) -> String {
    format!("{}|{}", kind.trim(), number.trim())
}
fn contact_fp(u: &UserSpec) -> String {
    fingerprint(&(&u.first_name, &u.last_name))
}
fn emails_fp(u: &UserSpec) -> String {
    let set: BTreeSet<String> = u.emails.iter().map(|e| norm_email(e)).collect();
    fingerprint(&set)
}
fn phones_fp(u: &UserSpec) -> String {
    let set: BTreeSet<String> = u
        .phones
        .iter()
        .map(|p| phone_value(&p.kind, &p.number))
        .collect();
    fingerprint(&set)
}
fn binding_fp(user: Option<&str>) -> String {
    fingerprint(&user.unwrap_or(""))
}

/// Extension number → username of its desired managing user (last claim wins, with a warning).
fn desired_bindings(d: &Desired, warnings: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, u) in &d.users {
        for ext in &u.extensions {
            if !d.extensions.contains_key(ext) {
                warnings.push(format!(
                    "user {name} should manage extension {ext}, which is not synced; binding skipped"
                ));
                continue;
            }
            if let Some(prev) = out.insert(ext.clone(), name.clone()) {
                if prev != *name {
                    warnings.push(format!(
                        "extension {ext} is claimed by users {prev} and {name}; {name} wins"
                    ));
                }
            }
        }
    }
    out
}

/// Which sub-resources to read: those of objects whose desired state changed since it was
/// last applied and verified (fingerprint differs or is unknown), or all with `full`.
pub fn sub_reads(d: &Desired, o: &Observed, own: &Ownership, full: bool) -> SubReads {
    let mut r = SubReads::default();
    if o.core_server.is_none() {
        return r;
    }
    let stale = |key: String, fp: String| full || own.fingerprint(&key) != Some(fp.as_str());
    let users: HashMap<&str, &User> = o.users.iter().map(|u| (u.username.as_str(), u)).collect();
    for (name, spec) in &d.users {
        let Some(id) = users.get(name.as_str()).and_then(|u| u.id.as_deref()) else {
            continue;
        };
        if stale(contact_key(id), contact_fp(spec)) {
            r.contacts.push(id.to_string());
        }
        if stale(emails_key(id), emails_fp(spec)) {
            r.emails.push(id.to_string());
        }
        if stale(phones_key(id), phones_fp(spec)) {
            r.phones.push(id.to_string());
        }
    }
    let bindings = desired_bindings(d, &mut Vec::new());
    for x in &o.extensions {
        let Some(id) = x.id.as_deref() else { continue };
        if !d.extensions.contains_key(&x.extension) {
            continue;
        }
        let want = bindings.get(&x.extension).map(String::as_str);
        if stale(binding_key(id), binding_fp(want)) {
            r.bindings.push(id.to_string());
        }
    }
    r
}

struct Ctx<'a> {
    d: &'a Desired,
    o: &'a Observed,
    own: &'a Ownership,
    cs: String,
    /// Set when the core server itself must be created: every op then needs it.
    core_need: Option<(Kind, String)>,
    /// Observed users by username (first wins).
    users_by_name: HashMap<&'a str, &'a User>,
    /// Logins whose dirty password was kept because iSymphony could not check it.
    unverifiable: BTreeMap<Kind, Vec<String>>,
    plan: Plan,
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn ch_str(c: &mut Vec<Change>, field: &str, from: &str, to: &str) {
    if from != to {
        c.push(Change {
            field: field.into(),
            from: quote(from),
            to: quote(to),
        });
    }
}
fn ch_val<T: PartialEq + std::fmt::Display>(c: &mut Vec<Change>, field: &str, from: T, to: T) {
    if from != to {
        c.push(Change {
            field: field.into(),
            from: from.to_string(),
            to: to.to_string(),
        });
    }
}
fn ch_secret(c: &mut Vec<Change>, field: &str, from: &Secret, to: &Secret) {
    if from != to {
        c.push(Change {
            field: field.into(),
            from: "***".into(),
            to: "***".into(),
        });
    }
}

impl<'a> Ctx<'a> {
    fn op(&self, action: Action, kind: Kind, key: &str, method: Method, path: String) -> Op {
        Op {
            action,
            kind,
            key: key.to_string(),
            label: None,
            changes: Vec::new(),
            stage: stage_of(kind, action),
            request: Request {
                method,
                path,
                body: None,
                confirm: None,
            },
            effects: Vec::new(),
            needs: self.core_need.iter().cloned().collect(),
            fingerprint: None,
        }
    }

    /// A PUT of the whole object `body` with the field changes it makes.
    fn update(&self, kind: Kind, key: &str, path: String, changes: Vec<Change>, body: Value) -> Op {
        let mut op = self.op(Action::Update, kind, key, Method::Put, path);
        op.changes = changes;
        op.request.body = Some(body);
        op
    }

    /// A DELETE of an observed object that the desired state lacks, when the agent manages it
    /// (objects it does not manage are never touched).
    fn delete_if_managed(
        &self,
        kind: Kind,
        key: &str,
        id: Option<&str>,
        path: impl FnOnce(&str) -> String,
    ) -> Option<Op> {
        let id = id?;
        self.own
            .is_managed(kind, Some(id), key)
            .then(|| self.op(Action::Delete, kind, key, Method::Delete, path(id)))
    }

    fn push(&mut self, op: Op) {
        self.plan.ops.push(op);
    }

    fn adopt_effect(&self, kind: Kind, id: &str, key: &str) -> Option<Effect> {
        let managed = !self.own.clean_unknown_items && self.own.is_managed(kind, Some(id), key);
        let ours = self.own.is_ours(kind, Some(id), key);
        (!managed && !ours).then(|| Effect::Adopt {
            kind: kind.type_name().into(),
            id: id.to_ascii_lowercase(),
            key: key.into(),
        })
    }

    /// Record adoption with the update op if there is one, else as a verified fact.
    fn finish_match(&mut self, kind: Kind, id: &str, key: &str, op: Option<Op>) {
        let adopt = self.adopt_effect(kind, id, key);
        match op {
            Some(mut op) => {
                op.effects.extend(adopt);
                self.push(op);
            }
            None => self.plan.verified.extend(adopt),
        }
    }

    fn count_managed(&mut self, kind: Kind, n: usize) {
        if n > 0 {
            *self.plan.managed_counts.entry(kind).or_default() += n;
        }
    }

    fn core_server(&mut self) {
        if self.o.core_server.is_some() {
            return;
        }
        let slug = self.d.core_server.slug.clone();
        let name = if self.d.core_server.name.is_empty() {
            slug.clone()
        } else {
            self.d.core_server.name.clone()
        };
        let body = CoreServer {
            id: Some(self.cs.clone()),
            slug: slug.clone(),
            name: name.clone(),
            broker_host: Some("localhost".into()),
            broker_port: Some(50000),
            extra: Default::default(),
        };
        let mut op = self.op(
            Action::Create,
            Kind::CoreServer,
            &slug,
            Method::Post,
            paths::core_servers(),
        );
        op.needs.clear();
        op.label = Some(name);
        op.request.body = Some(to_value(&body));
        op.request.confirm = Some(Confirm::Get(paths::core_server_by_slug(&slug)));
        self.push(op);
        self.core_need = Some((Kind::CoreServer, slug));
    }

    fn asterisk(&mut self) {
        let Some(a) = &self.o.asterisk else { return };
        let s = &self.d.asterisk;
        let mut c = Vec::new();
        ch_str(
            &mut c,
            "originatingContext",
            &a.originating_context,
            &s.originating_context,
        );
        ch_str(
            &mut c,
            "redirectingContext",
            &a.redirecting_context,
            &s.redirecting_context,
        );
        ch_str(
            &mut c,
            "musicOnHoldClass",
            &a.music_on_hold_class,
            &s.music_on_hold_class,
        );
        if c.is_empty() {
            return;
        }
        let mut body = a.clone();
        body.originating_context = s.originating_context.clone();
        body.redirecting_context = s.redirecting_context.clone();
        body.music_on_hold_class = s.music_on_hold_class.clone();
        let slug = self.d.core_server.slug.clone();
        let op = self.update(
            Kind::AsteriskSettings,
            &slug,
            paths::asterisk(&self.cs),
            c,
            to_value(&body),
        );
        self.push(op);
    }

    fn agents(&mut self) {
        if let Some(spec) = &self.d.voicemail_agent {
            match &self.o.voicemail_agent {
                None => self.plan.warnings.push(format!(
                    "voicemail agent {} is not known to the iSymphony server (agents register themselves); its settings were not pushed",
                    spec.identifier
                )),
                Some(a) => {
                    let mut c = Vec::new();
                    ch_str(&mut c, "rootPath", &a.root_path, &spec.root_path);
                    ch_str(&mut c, "resourceHost", &a.resource_host, &spec.resource_host);
                    ch_str(&mut c, "resourceExtension", &a.resource_extension, &spec.resource_extension);
                    if !c.is_empty() {
                        let mut body = a.clone();
                        body.root_path = spec.root_path.clone();
                        body.resource_host = spec.resource_host.clone();
                        body.resource_extension = spec.resource_extension.clone();
                        let mut op = self.update(Kind::VoicemailAgent, &spec.identifier, paths::voicemail_agent(&spec.identifier), c, to_value(&body));
                        op.needs.clear();
                        self.push(op);
                    }
                }
            }
            if !self.o.voicemail_identifiers.contains(&spec.identifier) {
                let mut op = self.op(
                    Action::Create,
                    Kind::VoicemailAgentIdentifier,
                    &spec.identifier,
                    Method::Post,
                    paths::voicemail_agent_identifiers(&self.cs),
                );
                op.request.body = Some(Value::String(spec.identifier.clone()));
                op.request.confirm = Some(Confirm::ListHasValue {
                    list: paths::voicemail_agent_identifiers(&self.cs),
                    value: spec.identifier.clone(),
                });
                self.push(op);
            }
        }
        if self.own.clean_unknown_items {
            let want = self
                .d
                .voicemail_agent
                .as_ref()
                .map(|a| a.identifier.as_str());
            for ident in &self.o.voicemail_identifiers {
                if Some(ident.as_str()) != want {
                    let op = self.op(
                        Action::Delete,
                        Kind::VoicemailAgentIdentifier,
                        ident,
                        Method::Delete,
                        paths::voicemail_agent_identifier(&self.cs, ident),
                    );
                    self.push(op);
                }
            }
        }
        if let Some(spec) = &self.d.recording_agent {
            match &self.o.recording_agent {
                None => self.plan.warnings.push(format!(
                    "recording agent {} is not known to the iSymphony server (agents register themselves); its settings were not pushed",
                    spec.identifier
                )),
                Some(a) => {
                    let mut c = Vec::new();
                    ch_str(&mut c, "rootPath", &a.root_path, &spec.root_path);
                    ch_str(&mut c, "resourceHost", &a.resource_host, &spec.resource_host);
                    ch_str(&mut c, "resourceExtension", &a.resource_extension, &spec.resource_extension);
                    ch_str(&mut c, "fileNameMask", &a.file_name_mask, &spec.file_name_mask);
                    if !c.is_empty() {
                        let mut body = a.clone();
                        body.root_path = spec.root_path.clone();
                        body.resource_host = spec.resource_host.clone();
                        body.resource_extension = spec.resource_extension.clone();
                        body.file_name_mask = spec.file_name_mask.clone();
                        let mut op = self.update(Kind::RecordingAgent, &spec.identifier, paths::recording_agent(&spec.identifier), c, to_value(&body));
                        op.needs.clear();
                        self.push(op);
                    }
                }
            }
        }
    }

    fn pbx_servers(&mut self) {
        let key_of = |p: &PbxServer| format!("{}:{}:{}", p.host, p.port, p.username);
        let mut matched: Option<usize> = None;
        if let Some(spec) = &self.d.pbx_server {
            matched = self.o.pbx_servers.iter().position(|p| {
                p.host == spec.host
                    && p.port == spec.port
                    && p.username == spec.username
                    && p.password == spec.password
            });
            let key = format!("{}:{}:{}", spec.host, spec.port, spec.username);
            match matched {
                None => {
                    let body = PbxServer {
                        id: Some(self.own.id(Kind::PbxServer, &key)),
                        display_name: spec.display_name.clone(),
                        host: spec.host.clone(),
                        port: spec.port,
                        username: spec.username.clone(),
                        password: spec.password.clone(),
                        enabled: true,
                        cdr_name: String::new(),
                        cdr_host: spec.cdr_host.clone(),
                        cdr_port: spec.cdr_port,
                        cdr_username: spec.cdr_username.clone().unwrap_or_default(),
                        cdr_password: spec.cdr_password.clone().unwrap_or_default(),
                        recording_agent_identifier: spec.recording_agent_identifier.clone(),
                        extra: Default::default(),
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::PbxServer,
                        &spec.host,
                        Method::Post,
                        paths::pbx_servers(&self.cs),
                    );
                    op.label = Some(spec.display_name.clone());
                    op.request.confirm = body
                        .id
                        .as_ref()
                        .map(|id| Confirm::Get(paths::pbx_server(&self.cs, id)));
                    let mut value = to_value(&body);
                    // A CDR login value the agent does not have is never sent.
                    if let Some(m) = value.as_object_mut() {
                        if spec.cdr_username.is_none() {
                            m.remove("cdrUsername");
                        }
                        if spec.cdr_password.is_none() {
                            m.remove("cdrPassword");
                        }
                    }
                    op.request.body = Some(value);
                    self.push(op);
                }
                Some(i) => {
                    let p = &self.o.pbx_servers[i];
                    let mut c = Vec::new();
                    ch_str(&mut c, "cdrHost", &p.cdr_host, &spec.cdr_host);
                    ch_val(&mut c, "cdrPort", p.cdr_port, spec.cdr_port);
                    // Unknown CDR values stay as the server has them.
                    let cdr_user = spec.cdr_username.as_ref().unwrap_or(&p.cdr_username);
                    let cdr_pass = spec.cdr_password.as_ref().unwrap_or(&p.cdr_password);
                    ch_str(&mut c, "cdrUsername", &p.cdr_username, cdr_user);
                    ch_secret(&mut c, "cdrPassword", &p.cdr_password, cdr_pass);
                    ch_str(
                        &mut c,
                        "recordingAgentIdentifier",
                        &p.recording_agent_identifier,
                        &spec.recording_agent_identifier,
                    );
                    let id = p.id.clone().unwrap_or_default();
                    let op = if c.is_empty() || id.is_empty() {
                        None
                    } else {
                        let mut body = p.clone();
                        body.cdr_host = spec.cdr_host.clone();
                        body.cdr_port = spec.cdr_port;
                        body.cdr_username = cdr_user.clone();
                        body.cdr_password = cdr_pass.clone();
                        body.recording_agent_identifier = spec.recording_agent_identifier.clone();
                        body.display_name = spec.display_name.clone();
                        let op = self.update(
                            Kind::PbxServer,
                            &spec.host,
                            paths::pbx_server(&self.cs, &id),
                            c,
                            to_value(&body),
                        );
                        Some(op)
                    };
                    if !id.is_empty() {
                        self.finish_match(Kind::PbxServer, &id, &key, op);
                    }
                }
            }
        }
        let mut managed = 0;
        for (i, p) in self.o.pbx_servers.iter().enumerate() {
            let key = key_of(p);
            if Some(i) == matched {
                managed += 1;
                continue;
            }
            if let Some(mut op) =
                self.delete_if_managed(Kind::PbxServer, &key, p.id.as_deref(), |id| {
                    paths::pbx_server(&self.cs, id)
                })
            {
                managed += 1;
                op.key = p.host.clone();
                op.label = Some(p.display_name.clone());
                self.push(op);
            }
        }
        self.count_managed(Kind::PbxServer, managed);
    }

    fn administrators(&mut self) {
        let mut by_key: HashMap<&str, &Administrator> = HashMap::new();
        for a in &self.o.administrators {
            by_key.entry(a.user_name.as_str()).or_insert(a);
        }
        let mut managed = 0;
        for (name, spec) in &self.d.administrators {
            match by_key.get(name.as_str()) {
                None => {
                    let id = self.own.id(Kind::Administrator, name);
                    let body = Administrator {
                        id: Some(id.clone()),
                        user_name: name.clone(),
                        password: create_password(
                            self.own,
                            Kind::Administrator,
                            name,
                            &spec.password,
                        ),
                        super_user: true,
                        extra: Default::default(),
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::Administrator,
                        name,
                        Method::Post,
                        paths::administrators_nohash(),
                    );
                    op.needs.clear();
                    op.request.body = Some(to_value(&body));
                    op.request.confirm = Some(Confirm::Get(paths::administrator(&id)));
                    if let Some(h) = spec.password.hash.as_ref().filter(|h| !h.is_empty()) {
                        op.effects.push(Effect::Password {
                            kind: Kind::Administrator.type_name().into(),
                            key: name.clone(),
                            hh: hash_of_hash(h.expose()),
                        });
                    }
                    self.push(op);
                }
                Some(a) => {
                    managed += 1;
                    let Some(id) = a.id.clone() else { continue };
                    let op = match password_rule(
                        self.own,
                        Kind::Administrator,
                        name,
                        &spec.password,
                        &a.password,
                    ) {
                        Pw::Keep => None,
                        Pw::Unverifiable => {
                            self.unverifiable
                                .entry(Kind::Administrator)
                                .or_default()
                                .push(name.clone());
                            None
                        }
                        Pw::Record(hh) => {
                            self.plan.verified.push(Effect::Password {
                                kind: Kind::Administrator.type_name().into(),
                                key: name.clone(),
                                hh,
                            });
                            None
                        }
                        Pw::Push(h, hh) => {
                            let mut body = (*a).clone();
                            body.password = h;
                            let mut op = self.op(
                                Action::Update,
                                Kind::Administrator,
                                name,
                                Method::Put,
                                paths::administrator_nohash(&id),
                            );
                            op.needs.clear();
                            op.changes.push(Change {
                                field: "password".into(),
                                from: "***".into(),
                                to: "***".into(),
                            });
                            op.request.body = Some(to_value(&body));
                            op.effects.push(Effect::Password {
                                kind: Kind::Administrator.type_name().into(),
                                key: name.clone(),
                                hh,
                            });
                            Some(op)
                        }
                    };
                    self.finish_match(Kind::Administrator, &id, name, op);
                }
            }
        }
        for a in &self.o.administrators {
            if self.d.administrators.contains_key(&a.user_name) {
                continue;
            }
            if let Some(mut op) =
                self.delete_if_managed(Kind::Administrator, &a.user_name, a.id.as_deref(), |id| {
                    paths::administrator(id)
                })
            {
                managed += 1;
                op.needs.clear();
                self.push(op);
            }
        }
        self.count_managed(Kind::Administrator, managed);
    }

    fn extensions(&mut self) {
        let mut by_key: HashMap<&str, &Extension> = HashMap::new();
        for x in &self.o.extensions {
            by_key.entry(x.extension.as_str()).or_insert(x);
        }
        let mut managed = 0;
        for (k, s) in &self.d.extensions {
            match by_key.get(k.as_str()) {
                None => {
                    let id = self.own.id(Kind::Extension, k);
                    let body = Extension {
                        id: Some(id.clone()),
                        extension: k.clone(),
                        display_name: s.display_name.clone(),
                        auto_answer: s.auto_answer,
                        peer: s.peer.clone(),
                        alt_origination_method: String::new(),
                        agent_name: s.agent_name.clone(),
                        agent_location: s.agent_location.clone(),
                        agent_interface: s.agent_interface.clone(),
                        agent_penalty: 0,
                        agent_paused: false,
                        originating_context_override: String::new(),
                        redirecting_context_override: String::new(),
                        originate_timeout_override: 0,
                        voice_mail_context: s.voice_mail_context.clone(),
                        voice_mail_box: s.voice_mail_box.clone(),
                        restricted: false,
                        ..Default::default()
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::Extension,
                        k,
                        Method::Post,
                        paths::extensions(&self.cs),
                    );
                    op.label = Some(s.display_name.clone());
                    op.request.body = Some(to_value(&body));
                    op.request.confirm = Some(Confirm::Get(paths::extension(&self.cs, &id)));
                    self.push(op);
                }
                Some(x) => {
                    managed += 1;
                    let Some(id) = x.id.clone() else { continue };
                    let mut c = Vec::new();
                    ch_str(&mut c, "displayName", &x.display_name, &s.display_name);
                    ch_str(&mut c, "peer", &x.peer, &s.peer);
                    ch_val(&mut c, "autoAnswer", x.auto_answer, s.auto_answer);
                    ch_str(&mut c, "agentName", &x.agent_name, &s.agent_name);
                    ch_str(
                        &mut c,
                        "agentLocation",
                        &x.agent_location,
                        &s.agent_location,
                    );
                    ch_str(
                        &mut c,
                        "agentInterface",
                        &x.agent_interface,
                        &s.agent_interface,
                    );
                    ch_str(
                        &mut c,
                        "originatingContextOverride",
                        &x.originating_context_override,
                        "",
                    );
                    ch_str(
                        &mut c,
                        "redirectingContextOverride",
                        &x.redirecting_context_override,
                        "",
                    );
                    ch_str(
                        &mut c,
                        "voiceMailContext",
                        &x.voice_mail_context,
                        &s.voice_mail_context,
                    );
                    ch_str(&mut c, "voiceMailBox", &x.voice_mail_box, &s.voice_mail_box);
                    let op = (!c.is_empty()).then(|| {
                        let mut body = (*x).clone();
                        body.display_name = s.display_name.clone();
                        body.peer = s.peer.clone();
                        body.auto_answer = s.auto_answer;
                        body.agent_name = s.agent_name.clone();
                        body.agent_location = s.agent_location.clone();
                        body.agent_interface = s.agent_interface.clone();
                        body.originating_context_override.clear();
                        body.redirecting_context_override.clear();
                        body.voice_mail_context = s.voice_mail_context.clone();
                        body.voice_mail_box = s.voice_mail_box.clone();
                        self.update(
                            Kind::Extension,
                            k,
                            paths::extension(&self.cs, &id),
                            c,
                            to_value(&body),
                        )
                    });
                    self.finish_match(Kind::Extension, &id, k, op);
                }
            }
        }
        for x in &self.o.extensions {
            if self.d.extensions.contains_key(&x.extension) {
                continue;
            }
            if let Some(mut op) =
                self.delete_if_managed(Kind::Extension, &x.extension, x.id.as_deref(), |id| {
                    paths::extension(&self.cs, id)
                })
            {
                managed += 1;
                op.label = Some(x.display_name.clone());
                self.push(op);
            }
        }
        self.count_managed(Kind::Extension, managed);
    }

    /// The user JSON posted to `managingUser` and the user's id, for existing or new users.
    fn user_body(&self, name: &str) -> Option<(String, Value, bool)> {
        if let Some(u) = self.users_by_name.get(name) {
            return u.id.clone().map(|id| (id, to_value(u), false));
        }
        let spec = self.d.users.get(name)?;
        let id = self.own.id(Kind::User, name);
        let body = User {
            id: Some(id.clone()),
            username: name.to_string(),
            password: create_password(self.own, Kind::User, name, &spec.password),
            enabled: spec.enabled,
            full: spec.full,
            restricted: false,
            ..Default::default()
        };
        Some((id, to_value(&body), true))
    }

    fn users(&mut self) {
        let mut by_key: HashMap<&str, &User> = HashMap::new();
        for u in &self.o.users {
            by_key.entry(u.username.as_str()).or_insert(u);
        }
        let mut managed = 0;
        for (name, s) in &self.d.users {
            let (uid, is_new) = match by_key.get(name.as_str()) {
                None => {
                    let Some((id, body, _)) = self.user_body(name) else {
                        continue;
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::User,
                        name,
                        Method::Post,
                        paths::users_nohash(&self.cs),
                    );
                    op.request.body = Some(body);
                    op.request.confirm = Some(Confirm::Get(paths::user(&self.cs, &id)));
                    if let Some(h) = s.password.hash.as_ref().filter(|h| !h.is_empty()) {
                        op.effects.push(Effect::Password {
                            kind: Kind::User.type_name().into(),
                            key: name.clone(),
                            hh: hash_of_hash(h.expose()),
                        });
                    }
                    self.push(op);
                    (id, true)
                }
                Some(u) => {
                    managed += 1;
                    let Some(id) = u.id.clone() else { continue };
                    let mut c = Vec::new();
                    ch_val(&mut c, "full", u.full, s.full);
                    let mut effects = Vec::new();
                    let mut body = (*u).clone();
                    body.full = s.full;
                    match password_rule(self.own, Kind::User, name, &s.password, &u.password) {
                        Pw::Keep => {}
                        Pw::Unverifiable => self
                            .unverifiable
                            .entry(Kind::User)
                            .or_default()
                            .push(name.clone()),
                        Pw::Record(hh) => self.plan.verified.push(Effect::Password {
                            kind: Kind::User.type_name().into(),
                            key: name.clone(),
                            hh,
                        }),
                        Pw::Push(h, hh) => {
                            body.password = h;
                            c.push(Change {
                                field: "password".into(),
                                from: "***".into(),
                                to: "***".into(),
                            });
                            effects.push(Effect::Password {
                                kind: Kind::User.type_name().into(),
                                key: name.clone(),
                                hh,
                            });
                        }
                    }
                    let op = (!c.is_empty()).then(|| {
                        let mut op = self.update(
                            Kind::User,
                            name,
                            paths::user_nohash(&self.cs, &id),
                            c,
                            to_value(&body),
                        );
                        op.effects = effects;
                        op
                    });
                    self.finish_match(Kind::User, &id, name, op);
                    (id, false)
                }
            };
            self.user_subs(name, s, &uid, is_new);
        }
        for u in &self.o.users {
            if self.d.users.contains_key(&u.username) {
                continue;
            }
            if let Some(op) =
                self.delete_if_managed(Kind::User, &u.username, u.id.as_deref(), |id| {
                    paths::user(&self.cs, id)
                })
            {
                managed += 1;
                self.push(op);
            }
        }
        self.count_managed(Kind::User, managed);
    }

    /// Contact, e-mails and phones of one desired user (new, or read this pass).
    fn user_subs(&mut self, name: &str, s: &UserSpec, uid: &str, is_new: bool) {
        let needs: Vec<(Kind, String)> = if is_new {
            vec![(Kind::User, name.to_string())]
        } else {
            Vec::new()
        };
        let fp = |key: String, value: String, needs: &Vec<(Kind, String)>| Fingerprint {
            key,
            value,
            needs: needs.clone(),
        };

        // Contact.
        let contact = if is_new {
            Some(&None)
        } else {
            self.o.contacts.get(uid)
        };
        if let Some(cur) = contact {
            let (f0, l0) = cur
                .as_ref()
                .map(|c| (c.first_name.as_str(), c.last_name.as_str()))
                .unwrap_or(("", ""));
            let mut c = Vec::new();
            ch_str(&mut c, "firstName", f0, &s.first_name);
            ch_str(&mut c, "lastName", l0, &s.last_name);
            let fkey = contact_key(uid);
            if !c.is_empty() {
                let action = if cur.is_none() {
                    Action::Create
                } else {
                    Action::Update
                };
                let mut op = self.op(
                    action,
                    Kind::Contact,
                    name,
                    Method::Put,
                    paths::contact(&self.cs, uid),
                );
                if action == Action::Update {
                    op.changes = c;
                } else {
                    op.label = Some(
                        format!("{} {}", s.first_name, s.last_name)
                            .trim()
                            .to_string(),
                    );
                }
                op.request.body = Some(json!({"firstName": s.first_name, "lastName": s.last_name}));
                op.needs.extend(needs.iter().cloned());
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            let f = fp(fkey, contact_fp(s), &needs);
            self.plan.fingerprints.push(f);
        }

        // E-mail addresses: add FreePBX's; remove only those the agent added earlier.
        let empty = Vec::new();
        let emails = if is_new {
            Some(&empty)
        } else {
            self.o.emails.get(uid)
        };
        if let Some(cur) = emails {
            let fkey = emails_key(uid);
            // Compared case-insensitively, posted as FreePBX writes it (the first spelling wins).
            let mut want: BTreeMap<String, &str> = BTreeMap::new();
            for e in &s.emails {
                let n = norm_email(e);
                if !n.is_empty() {
                    want.entry(n).or_insert(e.trim());
                }
            }
            let added = self.own.added(Kind::Email, name);
            let have: BTreeSet<String> = cur.iter().map(|e| norm_email(&e.address)).collect();
            for (addr, written) in want.iter().filter(|(a, _)| !have.contains(*a)) {
                let id = self.own.id(Kind::Email, &format!("{name}\0{addr}"));
                let mut op = self.op(
                    Action::Create,
                    Kind::Email,
                    name,
                    Method::Post,
                    paths::email_addresses(&self.cs, uid),
                );
                op.label = Some(written.to_string());
                op.request.body = Some(json!({"id": id, "type": "Work", "address": written}));
                op.request.confirm = Some(Confirm::ListHasId {
                    list: paths::email_addresses(&self.cs, uid),
                    id,
                });
                op.effects.push(Effect::Added {
                    kind: Kind::Email.type_name().into(),
                    owner: name.into(),
                    value: addr.clone(),
                });
                op.needs.extend(needs.iter().cloned());
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            for e in cur {
                let addr = norm_email(&e.address);
                if want.contains_key(&addr) {
                    continue;
                }
                let ours = added.contains(&addr)
                    || self
                        .own
                        .is_ours(Kind::Email, e.id.as_deref(), &format!("{name}\0{addr}"));
                let Some(eid) = e.id.as_deref().filter(|_| ours) else {
                    continue;
                };
                let mut op = self.op(
                    Action::Delete,
                    Kind::Email,
                    name,
                    Method::Delete,
                    paths::email_address(&self.cs, uid, eid),
                );
                op.label = Some(e.address.clone());
                op.effects.push(Effect::Removed {
                    kind: Kind::Email.type_name().into(),
                    owner: name.into(),
                    value: addr.clone(),
                });
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            // Addresses the agent added that someone removed since: forget them.
            for addr in added
                .iter()
                .filter(|a| !have.contains(*a) && !want.contains_key(*a))
            {
                self.plan.verified.push(Effect::Removed {
                    kind: Kind::Email.type_name().into(),
                    owner: name.into(),
                    value: addr.clone(),
                });
            }
            let f = fp(fkey, emails_fp(s), &needs);
            self.plan.fingerprints.push(f);
        }

        // Phone numbers, keyed by (type, number); same ownership rule as e-mails.
        let empty = Vec::new();
        let phones = if is_new {
            Some(&empty)
        } else {
            self.o.phones.get(uid)
        };
        if let Some(cur) = phones {
            let fkey = phones_key(uid);
            let want: BTreeMap<String, &PhoneSpec> = s
                .phones
                .iter()
                .filter(|p| !p.number.trim().is_empty())
                .map(|p| (phone_value(&p.kind, &p.number), p))
                .collect();
            let added = self.own.added(Kind::Phone, name);
            let have: BTreeSet<String> = cur
                .iter()
                .map(|p| phone_value(&p.kind, &p.number))
                .collect();
            for (v, p) in &want {
                if have.contains(v) {
                    continue;
                }
                let id = self.own.id(Kind::Phone, &format!("{name}\0{v}"));
                let mut op = self.op(
                    Action::Create,
                    Kind::Phone,
                    name,
                    Method::Post,
                    paths::phone_numbers(&self.cs, uid),
                );
                op.label = Some(format!("{} {}", p.kind.trim(), p.number.trim()));
                op.request.body =
                    Some(json!({"id": id, "type": p.kind.trim(), "number": p.number.trim()}));
                op.request.confirm = Some(Confirm::ListHasId {
                    list: paths::phone_numbers(&self.cs, uid),
                    id,
                });
                op.effects.push(Effect::Added {
                    kind: Kind::Phone.type_name().into(),
                    owner: name.into(),
                    value: v.clone(),
                });
                op.needs.extend(needs.iter().cloned());
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            for p in cur {
                let v = phone_value(&p.kind, &p.number);
                if want.contains_key(&v) {
                    continue;
                }
                let ours = added.contains(&v)
                    || self
                        .own
                        .is_ours(Kind::Phone, p.id.as_deref(), &format!("{name}\0{v}"));
                let Some(pid) = p.id.as_deref().filter(|_| ours) else {
                    continue;
                };
                let mut op = self.op(
                    Action::Delete,
                    Kind::Phone,
                    name,
                    Method::Delete,
                    paths::phone_number(&self.cs, uid, pid),
                );
                op.label = Some(format!("{} {}", p.kind.trim(), p.number.trim()));
                op.effects.push(Effect::Removed {
                    kind: Kind::Phone.type_name().into(),
                    owner: name.into(),
                    value: v.clone(),
                });
                op.fingerprint = Some(fkey.clone());
                self.push(op);
            }
            for v in added
                .iter()
                .filter(|a| !have.contains(*a) && !want.contains_key(*a))
            {
                self.plan.verified.push(Effect::Removed {
                    kind: Kind::Phone.type_name().into(),
                    owner: name.into(),
                    value: v.clone(),
                });
            }
            let f = fp(fkey, phones_fp(s), &needs);
            self.plan.fingerprints.push(f);
        }
    }

    fn bindings(&mut self) {
        let mut warnings = Vec::new();
        let want = desired_bindings(self.d, &mut warnings);
        self.plan.warnings.extend(warnings);
        let by_key: HashMap<&str, &Extension> = self
            .o
            .extensions
            .iter()
            .map(|x| (x.extension.as_str(), x))
            .collect();
        for k in self.d.extensions.keys() {
            let wanted = want.get(k).map(String::as_str);
            let (ext_id, ext_new, managed) = match by_key.get(k.as_str()) {
                Some(x) => match x.id.clone() {
                    Some(id) => (id, false, true),
                    None => continue,
                },
                None => (self.own.id(Kind::Extension, k), true, true),
            };
            let current: Option<&Option<User>> = if ext_new {
                Some(&None)
            } else {
                self.o.managing_users.get(&ext_id)
            };
            let Some(current) = current else { continue };
            let fkey = binding_key(&ext_id);
            let mut needs: Vec<(Kind, String)> = Vec::new();
            if ext_new {
                needs.push((Kind::Extension, k.clone()));
            }
            let cur_name = current.as_ref().map(|u| u.username.as_str());
            match (cur_name, wanted) {
                (cur, Some(u)) if cur != Some(u) => {
                    let Some((_, body, user_new)) = self.user_body(u) else {
                        continue;
                    };
                    if user_new {
                        needs.push((Kind::User, u.to_string()));
                    }
                    let action = if cur.is_some() {
                        Action::Update
                    } else {
                        Action::Create
                    };
                    let mut op = self.op(
                        action,
                        Kind::ManagingUser,
                        k,
                        Method::Post,
                        paths::managing_user(&self.cs, &ext_id),
                    );
                    op.label = Some(u.to_string());
                    if let Some(c) = cur {
                        op.changes.push(Change {
                            field: "user".into(),
                            from: quote(c),
                            to: quote(u),
                        });
                    }
                    op.request.body = Some(body);
                    // A retried binding whose first attempt was applied meets 409 ("already
                    // set to the given user"): done once the binding is seen to be this user.
                    op.request.confirm = Some(Confirm::GetHasField {
                        path: paths::managing_user(&self.cs, &ext_id),
                        field: "username".into(),
                        value: u.to_string(),
                    });
                    op.needs.extend(needs.iter().cloned());
                    op.fingerprint = Some(fkey.clone());
                    self.push(op);
                }
                (Some(c), None) if managed => {
                    let mut op = self.op(
                        Action::Delete,
                        Kind::ManagingUser,
                        k,
                        Method::Delete,
                        paths::managing_user(&self.cs, &ext_id),
                    );
                    op.label = Some(c.to_string());
                    op.fingerprint = Some(fkey.clone());
                    self.push(op);
                }
                _ => {}
            }
            self.plan.fingerprints.push(Fingerprint {
                key: fkey,
                value: binding_fp(wanted),
                needs,
            });
        }
    }

    fn queues(&mut self) {
        let mut by_key: HashMap<&str, &Queue> = HashMap::new();
        for q in &self.o.queues {
            by_key.entry(q.identifier.as_str()).or_insert(q);
        }
        let mut managed = 0;
        for (k, s) in &self.d.queues {
            match by_key.get(k.as_str()) {
                None => {
                    let id = self.own.id(Kind::Queue, k);
                    let body = Queue {
                        id: Some(id.clone()),
                        identifier: k.clone(),
                        display_name: s.display_name.clone(),
                        destination_extension: s.destination_extension.clone(),
                        destination_context: s.destination_context.clone(),
                        enabled: true,
                        restricted: false,
                        ..Default::default()
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::Queue,
                        k,
                        Method::Post,
                        paths::queues(&self.cs),
                    );
                    op.label = Some(s.display_name.clone());
                    op.request.body = Some(to_value(&body));
                    op.request.confirm = Some(Confirm::Get(paths::queue(&self.cs, &id)));
                    self.push(op);
                }
                Some(q) => {
                    managed += 1;
                    let Some(id) = q.id.clone() else { continue };
                    let mut c = Vec::new();
                    ch_str(&mut c, "displayName", &q.display_name, &s.display_name);
                    ch_str(
                        &mut c,
                        "destinationExtension",
                        &q.destination_extension,
                        &s.destination_extension,
                    );
                    ch_str(
                        &mut c,
                        "destinationContext",
                        &q.destination_context,
                        &s.destination_context,
                    );
                    ch_val(&mut c, "enabled", q.enabled, true);
                    let op = (!c.is_empty()).then(|| {
                        let mut body = (*q).clone();
                        body.display_name = s.display_name.clone();
                        body.destination_extension = s.destination_extension.clone();
                        body.destination_context = s.destination_context.clone();
                        body.enabled = true;
                        self.update(
                            Kind::Queue,
                            k,
                            paths::queue(&self.cs, &id),
                            c,
                            to_value(&body),
                        )
                    });
                    self.finish_match(Kind::Queue, &id, k, op);
                }
            }
        }
        for q in &self.o.queues {
            if self.d.queues.contains_key(&q.identifier) {
                continue;
            }
            if let Some(mut op) =
                self.delete_if_managed(Kind::Queue, &q.identifier, q.id.as_deref(), |id| {
                    paths::queue(&self.cs, id)
                })
            {
                managed += 1;
                op.label = Some(q.display_name.clone());
                self.push(op);
            }
        }
        self.count_managed(Kind::Queue, managed);
    }

    fn conference_rooms(&mut self) {
        let mut by_key: HashMap<&str, &ConferenceRoom> = HashMap::new();
        for r in &self.o.conference_rooms {
            by_key.entry(r.identifier.as_str()).or_insert(r);
        }
        let mut managed = 0;
        for (k, s) in &self.d.conference_rooms {
            match by_key.get(k.as_str()) {
                None => {
                    let id = self.own.id(Kind::ConferenceRoom, k);
                    let body = ConferenceRoom {
                        id: Some(id.clone()),
                        name: s.name.clone(),
                        identifier: k.clone(),
                        destination_extension: s.destination_extension.clone(),
                        destination_context: s.destination_context.clone(),
                        restricted: false,
                        ..Default::default()
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::ConferenceRoom,
                        k,
                        Method::Post,
                        paths::conference_rooms(&self.cs),
                    );
                    op.label = Some(s.name.clone());
                    op.request.body = Some(to_value(&body));
                    op.request.confirm = Some(Confirm::Get(paths::conference_room(&self.cs, &id)));
                    self.push(op);
                }
                Some(r) => {
                    managed += 1;
                    let Some(id) = r.id.clone() else { continue };
                    let mut c = Vec::new();
                    ch_str(&mut c, "name", &r.name, &s.name);
                    ch_str(
                        &mut c,
                        "destinationExtension",
                        &r.destination_extension,
                        &s.destination_extension,
                    );
                    ch_str(
                        &mut c,
                        "destinationContext",
                        &r.destination_context,
                        &s.destination_context,
                    );
                    let op = (!c.is_empty()).then(|| {
                        let mut body = (*r).clone();
                        body.name = s.name.clone();
                        body.destination_extension = s.destination_extension.clone();
                        body.destination_context = s.destination_context.clone();
                        self.update(
                            Kind::ConferenceRoom,
                            k,
                            paths::conference_room(&self.cs, &id),
                            c,
                            to_value(&body),
                        )
                    });
                    self.finish_match(Kind::ConferenceRoom, &id, k, op);
                }
            }
        }
        for r in &self.o.conference_rooms {
            if self.d.conference_rooms.contains_key(&r.identifier) {
                continue;
            }
            if let Some(mut op) =
                self.delete_if_managed(Kind::ConferenceRoom, &r.identifier, r.id.as_deref(), |id| {
                    paths::conference_room(&self.cs, id)
                })
            {
                managed += 1;
                op.label = Some(r.name.clone());
                self.push(op);
            }
        }
        self.count_managed(Kind::ConferenceRoom, managed);
    }

    fn parking_lot(&mut self) {
        let want = self.d.parking_lot.as_ref();
        let mut managed = 0;
        let mut matched = false;
        if let Some(s) = want {
            match self
                .o
                .parking_lots
                .iter()
                .find(|l| l.identifier == s.identifier)
            {
                None => {
                    let id = self.own.id(Kind::ParkingLot, &s.identifier);
                    let body = ParkingLot {
                        id: Some(id.clone()),
                        identifier: s.identifier.clone(),
                        name: s.name.clone(),
                        destination_extension: s.destination_extension.clone(),
                        destination_context: s.destination_context.clone(),
                        restricted: false,
                        extra: Default::default(),
                    };
                    let mut op = self.op(
                        Action::Create,
                        Kind::ParkingLot,
                        &s.identifier,
                        Method::Post,
                        paths::parking_lots(&self.cs),
                    );
                    op.label = Some(s.name.clone());
                    op.request.body = Some(to_value(&body));
                    op.request.confirm = Some(Confirm::Get(paths::parking_lot(&self.cs, &id)));
                    self.push(op);
                }
                Some(l) => {
                    matched = true;
                    managed += 1;
                    if let Some(id) = l.id.clone() {
                        let mut c = Vec::new();
                        ch_str(&mut c, "name", &l.name, &s.name);
                        ch_str(
                            &mut c,
                            "destinationExtension",
                            &l.destination_extension,
                            &s.destination_extension,
                        );
                        ch_str(
                            &mut c,
                            "destinationContext",
                            &l.destination_context,
                            &s.destination_context,
                        );
                        let op = (!c.is_empty()).then(|| {
                            let mut body = l.clone();
                            body.name = s.name.clone();
                            body.destination_extension = s.destination_extension.clone();
                            body.destination_context = s.destination_context.clone();
                            self.update(
                                Kind::ParkingLot,
                                &s.identifier,
                                paths::parking_lot(&self.cs, &id),
                                c,
                                to_value(&body),
                            )
                        });
                        self.finish_match(Kind::ParkingLot, &id, &s.identifier, op);
                    }
                }
            }
        }
        for l in &self.o.parking_lots {
            if matched && want.is_some_and(|s| s.identifier == l.identifier) {
                continue;
            }
            if let Some(mut op) =
                self.delete_if_managed(Kind::ParkingLot, &l.identifier, l.id.as_deref(), |id| {
                    paths::parking_lot(&self.cs, id)
                })
            {
                managed += 1;
                op.label = Some(l.name.clone());
                self.push(op);
            }
        }
        self.count_managed(Kind::ParkingLot, managed);
    }
}

/// Compute the plan. Pure: same inputs, same plan.
pub fn diff(d: &Desired, o: &Observed, own: &Ownership) -> Plan {
    let cs = o
        .core_server
        .as_ref()
        .and_then(|c| c.id.clone())
        .unwrap_or_else(|| own.id(Kind::CoreServer, &d.core_server.slug));
    let mut c = Ctx {
        d,
        o,
        own,
        cs,
        core_need: None,
        users_by_name: HashMap::new(),
        unverifiable: BTreeMap::new(),
        plan: Plan::default(),
    };
    for u in &o.users {
        c.users_by_name.entry(u.username.as_str()).or_insert(u);
    }
    c.core_server();
    c.asterisk();
    c.agents();
    c.pbx_servers();
    c.administrators();
    c.extensions();
    c.users();
    c.bindings();
    c.queues();
    c.conference_rooms();
    c.parking_lot();
    for (kind, names) in std::mem::take(&mut c.unverifiable) {
        c.plan.warnings.extend(unverifiable_warning(kind, &names));
    }
    let mut plan = c.plan;
    super::frozen::hold_frozen(&mut plan, d);
    let mut warnings = d.warnings.clone();
    warnings.append(&mut plan.warnings);
    warnings.dedup();
    plan.warnings = warnings;
    plan.ops.sort_by(|a, b| {
        (a.stage, a.kind, &a.key, &a.label).cmp(&(b.stage, b.kind, &b.key, &b.label))
    });
    plan
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
