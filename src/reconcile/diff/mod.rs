//! `diff(&Desired, &Observed, &Ownership) -> Plan`: the pure heart of a pass (no I/O, no clock,
//! no randomness).
//!
//! It compares exactly the fields the cxpanel module compares, leaves create-only
//! fields (`restricted`, `altOriginationMethod`, `agentPenalty`, `agentPaused`,
//! `originateTimeoutOverride`) alone on update, and relies on the tolerant wire types for the
//! PHP client's loose equality (null == "", "5038" == 5038). Objects are matched by natural key;
//! a server object with a FreePBX object's key is adopted (updated, never duplicated). Only
//! managed objects are deleted. Sub-resources (contact, e-mails, phones, managing user) are
//! compared only where [`Observed`] holds them, i.e. where [`sub_reads`] asked for them.
//!
//! One file per part: the simple collections (administrators, extensions, queues, conference
//! rooms, parking lots) go through the one generic diff of [`collection`]; users and their
//! contact, e-mail and phone sub-resources ([`users`], [`contact`]), managing-user bindings
//! ([`bindings`]), the core server and its Asterisk settings ([`core`]), the agents
//! ([`agents`]) and the PBX connection ([`pbx`]) each have their own. Changed fields are found
//! by comparing the wire JSON before and after the desired values are set ([`changes`]), so a
//! field's name is its serde name, written once in `api::types`.

mod agents;
mod bindings;
mod changes;
mod collection;
pub(crate) mod contact;
mod core;
mod pbx;
mod users;

use super::facts::Effect;
use super::ownership::Ownership;
use super::passwords::unverifiable_warning;
use super::plan::{stage_of, Action, Body, Change, Method, Op, Plan, Request};
use crate::api::types::*;
use crate::model::Desired;
use crate::model::Kind;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

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

/// Which sub-resources to read: those of objects whose desired state changed since it was
/// last applied and verified (fingerprint differs or is unknown), or all with `full`.
pub fn sub_reads(d: &Desired, o: &Observed, own: &Ownership, full: bool) -> SubReads {
    let mut r = SubReads::default();
    if o.core_server.is_none() {
        return r;
    }
    // A frozen kind is never read (nothing of it is changed); a set whose deletions were
    // held is fresh while they still are (see `frozen::HELD_MARK`).
    let stale = |kind: Kind, key: String, fp: String| {
        if d.frozen.contains_key(&kind) {
            return false;
        }
        let stored = own.fingerprint(&key);
        let held = d.held_deletes.contains_key(&kind)
            && stored.and_then(|s| s.strip_prefix(super::frozen::HELD_MARK)) == Some(fp.as_str());
        full || (stored != Some(fp.as_str()) && !held)
    };
    let users: HashMap<&str, &User> = o.users.iter().map(|u| (u.username.as_str(), u)).collect();
    for (name, spec) in &d.users {
        let Some(id) = users.get(name.as_str()).and_then(|u| u.id.as_deref()) else {
            continue;
        };
        if stale(
            Kind::Contact,
            contact::contact_key(id),
            contact::contact_fp(spec),
        ) {
            r.contacts.push(id.to_string());
        }
        if stale(
            Kind::Email,
            contact::emails_key(id),
            contact::emails_fp(spec),
        ) {
            r.emails.push(id.to_string());
        }
        if stale(
            Kind::Phone,
            contact::phones_key(id),
            contact::phones_fp(spec),
        ) {
            r.phones.push(id.to_string());
        }
    }
    let bindings = bindings::desired_bindings(d, &mut Vec::new());
    for x in &o.extensions {
        let Some(id) = x.id.as_deref() else { continue };
        if !d.extensions.contains_key(&x.extension) {
            continue;
        }
        let want = bindings.get(&x.extension).map(String::as_str);
        if stale(
            Kind::ManagingUser,
            bindings::binding_key(id),
            bindings::binding_fp(want),
        ) {
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

/// The JSON of a wire object, to compare fields. Serialising the wire types cannot fail
/// (string keys, no non-finite numbers).
fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("wire types serialise to JSON")
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
    fn update(&self, kind: Kind, key: &str, path: String, changes: Vec<Change>, body: Body) -> Op {
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
            kind,
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
}

fn ctx<'a>(d: &'a Desired, o: &'a Observed, own: &'a Ownership) -> Ctx<'a> {
    let cs = o
        .core_server
        .as_ref()
        .and_then(|c| c.id.clone())
        .unwrap_or_else(|| own.id(Kind::CoreServer, &d.core_server.slug));
    Ctx {
        d,
        o,
        own,
        cs,
        core_need: None,
        users_by_name: HashMap::new(),
        unverifiable: BTreeMap::new(),
        plan: Plan::default(),
    }
}

/// The plan that only creates the core server, when it is missing (what [`diff`] would plan
/// for it, without planning everything else).
pub fn core_server_only(d: &Desired, o: &Observed, own: &Ownership) -> Plan {
    let mut c = ctx(d, o, own);
    c.core_server();
    c.plan
}

/// Compute the plan. Pure: same inputs, same plan.
pub fn diff(d: &Desired, o: &Observed, own: &Ownership) -> Plan {
    let mut c = ctx(d, o, own);
    for u in &o.users {
        c.users_by_name.entry(u.username.as_str()).or_insert(u);
    }
    c.core_server();
    c.asterisk();
    c.agents();
    c.pbx_servers();
    c.collection::<Administrator>();
    c.collection::<Extension>();
    c.users();
    c.bindings();
    c.collection::<Queue>();
    c.collection::<ConferenceRoom>();
    c.collection::<ParkingLot>();
    for (kind, names) in std::mem::take(&mut c.unverifiable) {
        c.plan.warnings.extend(unverifiable_warning(kind, &names));
    }
    let mut plan = c.plan;
    super::frozen::hold_frozen(&mut plan, d);
    super::frozen::hold_deletes(&mut plan, d);
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
#[path = "../diff_tests.rs"]
mod tests;
