//! The live model: the configured objects of one core server, read from the store at request
//! time, with their live ids, joined with a backend's [`Facts`] by [`super::join`].
//!
//! Live ids of configured objects are random v4 UUIDs minted here, keyed by (kind, core
//! server, configuration id, the store's insertion sequence number): an update keeps the
//! sequence number and so the id; a delete and re-create with the same configuration id (the
//! agent mints deterministic ids) gets a new sequence number and so a new live id. Entries of
//! objects that are gone are pruned on the next read of their core server. User statuses are
//! kept here too (iSymphony-internal, no Asterisk object), lost on restart like live ids.

use crate::api::resource::{CONFERENCE_ROOMS, EXTENSIONS, PARKING_LOTS, QUEUES, USERS};
use crate::server::resources::{cs_scope, CORE_SERVERS};
use crate::server::store::{Item, State};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Marks a path segment that was `getByName/{name}` (set by [`super::routes::canonical`]).
pub const BY_NAME: char = '\u{1}';

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Extension,
    Queue,
    Room,
    User,
    Status,
}

/// (kind, core server id, configuration id, insertion sequence number).
type Key = (Kind, String, String, u64);

/// A user's presence status (Live API §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub name: String,
    pub kind: String,
    pub note: String,
    pub return_time: i64,
    pub user_created: bool,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            name: "Available".into(),
            kind: "available".into(),
            note: String::new(),
            return_time: -1,
            user_created: false,
        }
    }
}

/// A core server's view and the (store, status) generations it was built from.
type CachedView = (u64, u64, Arc<CsView>);

/// Live ids and statuses of configured objects, for the life of the process.
#[derive(Debug, Default)]
pub struct Model {
    ids: Mutex<HashMap<Key, Uuid>>,
    statuses: Mutex<HashMap<Key, Status>>,
    /// Moves on every status set.
    status_generation: std::sync::atomic::AtomicU64,
    /// The last view of each core server, and the store and status generations it was built
    /// from: reading 1,000 extensions' JSON per request cost more than the request itself.
    views: Mutex<HashMap<String, CachedView>>,
}

#[derive(Debug, Clone)]
pub struct Ext {
    pub live_id: Uuid,
    pub id: String,
    pub number: String,
    pub display_name: String,
    pub peer: String,
    pub alt: String,
    pub auto_answer: bool,
    pub agent_name: String,
    pub agent_location: String,
    pub agent_interface: String,
    pub agent_penalty: i64,
    pub agent_paused: bool,
    pub originating_context: String,
    pub redirecting_context: String,
    pub originate_timeout: i64,
    /// Configuration id of the managing user (R5), if bound.
    pub user: Option<String>,
}

impl Ext {
    /// The queue interface of this extension (FreePBX's `Local/<ext>@from-queue/n` by default).
    pub fn location(&self) -> String {
        if self.agent_location.is_empty() {
            format!("Local/{}@from-queue/n", self.number)
        } else {
            self.agent_location.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub live_id: Uuid,
    pub id: String,
    pub identifier: String,
    pub display_name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct Room {
    pub live_id: Uuid,
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub dial: String,
}

#[derive(Debug, Clone)]
pub struct User {
    pub live_id: Uuid,
    pub status_id: Uuid,
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub full: bool,
    pub status: Status,
}

/// The configured objects of one core server, as the store holds them now.
#[derive(Debug, Clone, Default)]
pub struct CsView {
    pub id: String,
    pub originating_context: String,
    pub redirecting_context: String,
    pub exts: Vec<Ext>,
    pub queues: Vec<Queue>,
    pub rooms: Vec<Room>,
    pub users: Vec<User>,
    /// Parking extensions (the lots' `destinationExtension`) and their slots.
    pub parking: Vec<String>,
    /// `[server] licensed_full_users` is set: extensions and agents need a full user.
    pub full_users_only: bool,
    /// Look-ups built once per load ([`CsView::index`]): full users' ids, and extensions (by
    /// position) by `peer`, `altOriginationMethod` and queue interface.
    full_users: HashSet<String>,
    by_peer: HashMap<String, usize>,
    by_alt: HashMap<String, usize>,
    by_location: HashMap<String, usize>,
}

fn s(v: &Value, f: &str) -> String {
    match v.get(f) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}
fn b(v: &Value, f: &str) -> bool {
    match v.get(f) {
        Some(Value::Bool(x)) => *x,
        Some(Value::String(x)) => x == "true",
        _ => false,
    }
}
fn i(v: &Value, f: &str) -> i64 {
    match v.get(f) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(x)) => x.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// FreePBX parks calls on the slots after the park extension (8 by default).
const PARKING_SLOTS: u64 = 8;

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// The core server addressed by `seg` (its id, or a [`BY_NAME`] slug) with its configured
    /// objects; None when it does not exist.
    pub fn load(&self, st: &State, seg: &str, full_users_only: bool) -> Option<Arc<CsView>> {
        let cs = match seg.strip_prefix(BY_NAME) {
            Some(slug) => st.id_by_key(CORE_SERVERS, slug)?.to_string(),
            None if st.contains(CORE_SERVERS, seg) => seg.to_string(),
            None => return None,
        };
        let stamp = (
            st.generation(),
            self.status_generation
                .load(std::sync::atomic::Ordering::SeqCst),
        );
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, sg, v)) = views.get(&cs) {
            if (*g, *sg) == stamp && v.full_users_only == full_users_only {
                return Some(v.clone());
            }
        }
        let view = Arc::new(self.build(st, cs.clone(), full_users_only));
        views.insert(cs, (stamp.0, stamp.1, view.clone()));
        Some(view)
    }

    /// A new view of core server `cs` (which exists), minting live ids for new objects and
    /// forgetting those of objects that are gone.
    fn build(&self, st: &State, cs: String, full_users_only: bool) -> CsView {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let mut alive = HashSet::new();
        let mut mint = |kind: Kind, id: &str, it: &Item| -> Uuid {
            let key = (kind, cs.clone(), id.to_string(), it.seq());
            alive.insert(key.clone());
            *ids.entry(key).or_insert_with(Uuid::new_v4)
        };
        let ctx = |f: &str| context(st, &cs, f);
        let mut view = CsView {
            id: cs.clone(),
            originating_context: ctx("originatingContext"),
            redirecting_context: ctx("redirectingContext"),
            full_users_only,
            ..CsView::default()
        };
        // Each configured object of a collection, with its live id (minted for `kind`) and
        // its stored JSON.
        let mut each = |kind: Kind, name: &str| -> Vec<(Uuid, String, Value)> {
            st.items(&cs_scope(&cs, name))
                .map(|(id, it)| (mint(kind, id, it), id.to_string(), it.value()))
                .collect()
        };
        let managing = cs_scope(&cs, "managingUser");
        for (live_id, id, v) in each(Kind::Extension, EXTENSIONS.name()) {
            let user = st.get(&managing, &id).and_then(|m| m.str_field("userId"));
            view.exts.push(Ext {
                live_id,
                id,
                number: s(&v, "extension"),
                display_name: s(&v, "displayName"),
                peer: s(&v, "peer"),
                alt: s(&v, "altOriginationMethod"),
                auto_answer: b(&v, "autoAnswer"),
                agent_name: s(&v, "agentName"),
                agent_location: s(&v, "agentLocation"),
                agent_interface: s(&v, "agentInterface"),
                agent_penalty: i(&v, "agentPenalty"),
                agent_paused: b(&v, "agentPaused"),
                originating_context: s(&v, "originatingContextOverride"),
                redirecting_context: s(&v, "redirectingContextOverride"),
                originate_timeout: i(&v, "originateTimeoutOverride"),
                user,
            });
        }
        for (live_id, id, v) in each(Kind::Queue, QUEUES.name()) {
            view.queues.push(Queue {
                live_id,
                id,
                identifier: s(&v, "identifier"),
                display_name: s(&v, "displayName"),
                enabled: b(&v, "enabled"),
            });
        }
        for (live_id, id, v) in each(Kind::Room, CONFERENCE_ROOMS.name()) {
            let identifier = s(&v, "identifier");
            let dest = s(&v, "destinationExtension");
            view.rooms.push(Room {
                live_id,
                id,
                dial: if dest.is_empty() {
                    identifier.clone()
                } else {
                    dest
                },
                identifier,
                name: s(&v, "name"),
            });
        }
        let statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        for (id, it) in st.items(&cs_scope(&cs, USERS.name())) {
            let v = it.value();
            let key = (Kind::User, cs.clone(), id.to_string(), it.seq());
            view.users.push(User {
                live_id: mint(Kind::User, id, it),
                status_id: mint(Kind::Status, id, it),
                id: id.to_string(),
                username: s(&v, "username"),
                display_name: s(&v, "displayName"),
                full: b(&v, "full"),
                status: statuses.get(&key).cloned().unwrap_or_default(),
            });
        }
        drop(statuses);
        view.parking = parking(st, &cs);
        view.index();
        ids.retain(|k, _| k.1 != cs || alive.contains(k));
        let mut statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        statuses.retain(|k, _| k.1 != cs || alive.contains(k));
        view
    }

    /// Keep `status` as the status of `user` (of core server `cs`) until it is set again or the
    /// user is deleted.
    pub fn set_status(&self, st: &State, cs: &str, user: &str, status: Status) -> bool {
        let Some(it) = st.get(&cs_scope(cs, USERS.name()), user) else {
            return false;
        };
        let key = (Kind::User, cs.to_string(), user.to_string(), it.seq());
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, status);
        self.status_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        true
    }
}

impl CsView {
    /// An extension is shown unless `licensed_full_users` is set and it is not bound to a full
    /// user (Live API §1.5).
    pub fn licensed(&self, e: &Ext) -> bool {
        !self.full_users_only || e.user.as_ref().is_some_and(|u| self.full_users.contains(u))
    }
    /// Build the look-ups (the first extension wins when two share a device).
    fn index(&mut self) {
        self.full_users = self
            .users
            .iter()
            .filter(|u| u.full)
            .map(|u| u.id.clone())
            .collect();
        for (n, e) in self.exts.iter().enumerate() {
            if !e.peer.is_empty() {
                self.by_peer.entry(e.peer.clone()).or_insert(n);
            }
            if !e.alt.is_empty() {
                self.by_alt.entry(e.alt.clone()).or_insert(n);
            }
            self.by_location.entry(e.location()).or_insert(n);
        }
    }
    /// Visible extensions.
    pub fn extensions(&self) -> impl Iterator<Item = &Ext> {
        self.exts.iter().filter(|e| self.licensed(e))
    }
    /// The visible extension addressed by `seg`: its live id or a [`BY_NAME`] number.
    pub fn ext(&self, seg: &str) -> Option<&Ext> {
        match seg.strip_prefix(BY_NAME) {
            Some(n) => self.extensions().find(|e| e.number == n),
            None => self.extensions().find(|e| e.live_id.to_string() == seg),
        }
    }
    /// Enabled queues (disabled ones are hidden, §3).
    pub fn queues(&self) -> impl Iterator<Item = &Queue> {
        self.queues.iter().filter(|q| q.enabled)
    }
    pub fn queue(&self, seg: &str) -> Option<&Queue> {
        match seg.strip_prefix(BY_NAME) {
            Some(n) => self.queues().find(|q| q.identifier == n),
            None => self.queues().find(|q| q.live_id.to_string() == seg),
        }
    }
    pub fn user(&self, seg: &str) -> Option<&User> {
        match seg.strip_prefix(BY_NAME) {
            Some(n) => self.users.iter().find(|u| u.username == n),
            None => self.users.iter().find(|u| u.live_id.to_string() == seg),
        }
    }
    pub fn room(&self, seg: &str) -> Option<&Room> {
        match seg.strip_prefix(BY_NAME) {
            Some(n) => self.rooms.iter().find(|r| r.identifier == n),
            None => self.rooms.iter().find(|r| r.live_id.to_string() == seg),
        }
    }
    /// The user's visible extensions (bound through `managingUser`).
    pub fn user_extensions<'a>(&'a self, u: &'a User) -> impl Iterator<Item = &'a Ext> + 'a {
        self.extensions()
            .filter(move |e| e.user.as_deref() == Some(u.id.as_str()))
    }
    /// The configured extension whose `peer` is `device`.
    pub fn ext_by_peer(&self, device: &str) -> Option<&Ext> {
        self.by_peer.get(device).and_then(|&n| self.exts.get(n))
    }
    /// The configured extension whose `peer` or `altOriginationMethod` is `device`.
    pub fn ext_by_device(&self, device: &str) -> Option<&Ext> {
        self.ext_by_peer(device)
            .or_else(|| self.by_alt.get(device).and_then(|&n| self.exts.get(n)))
    }
    /// The configured extension a queue member's interface belongs to.
    pub fn ext_by_interface(&self, interface: &str) -> Option<&Ext> {
        self.by_location
            .get(interface)
            .and_then(|&n| self.exts.get(n))
    }
    /// Whether `dest` is something on this PBX: a configured extension, queue, conference room
    /// or parking space (`[live] actions = "internal"`).
    pub fn is_internal(&self, dest: &str) -> bool {
        self.exts.iter().any(|e| e.number == dest)
            || self.queues().any(|q| q.identifier == dest)
            || self
                .rooms
                .iter()
                .any(|r| r.identifier == dest || r.dial == dest)
            || self.parking.iter().any(|p| p == dest)
    }
}

/// A context of the core server's Asterisk settings (R3), FreePBX's `from-internal` if unset.
fn context(st: &State, cs: &str, field: &str) -> String {
    let c = st
        .get(&cs_scope(cs, "asterisk"), "settings")
        .map(|it| s(&it.value(), field))
        .unwrap_or_default();
    if c.is_empty() {
        "from-internal".into()
    } else {
        c
    }
}

/// The parking extensions of core server `cs` (the lots' `destinationExtension`) and the
/// slots after each.
fn parking(st: &State, cs: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, it) in st.items(&cs_scope(cs, PARKING_LOTS.name())) {
        let ext = s(&it.value(), "destinationExtension");
        if let Ok(n) = ext.parse::<u64>() {
            out.extend((1..=PARKING_SLOTS).map(|k| (n + k).to_string()));
        }
        if !ext.is_empty() {
            out.push(ext);
        }
    }
    out
}

/// The `peer` of the extension numbered `number`, in any core server (the simulator's
/// directory).
pub fn peer_of(st: &State, number: &str) -> Option<String> {
    let suffix = format!("/{}", EXTENSIONS.name());
    st.scopes_with_prefix("cs/")
        .filter(|s| s.ends_with(&suffix))
        .find_map(|scope| {
            let id = st.id_by_key(scope, number)?;
            st.get(scope, id)?.str_field("peer")
        })
}
