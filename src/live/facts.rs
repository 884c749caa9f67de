//! What a live backend knows about the PBX right now: plain data keyed by Asterisk's own names
//! (channel unique ids, queue names, member interfaces, conference names, extension numbers).
//!
//! A backend (Asterisk through AMI, or the simulator) is the only writer; the Live API routes
//! read it and join it with the configured objects of the store ([`super::model`]). Live ids of
//! call segments, caller ids and agents are minted here, by the backend, when Asterisk's object
//! appears (a new v4 UUID per object life; never derived, so they do not survive a restart or a
//! re-creation). Live ids of configured objects are minted by the model. [`Shared`] is the lock
//! and change counter around them that the writer and the readers share.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use tokio::sync::watch;
use uuid::Uuid;

/// One channel: a call segment candidate. Which channels are shown as segments, and whether a
/// segment is INTERNAL, is decided by the model from the configured extensions' devices.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Live id of the segment (minted when the channel appeared).
    pub id: Uuid,
    /// Live id of its caller-id object.
    pub caller_id_id: Uuid,
    /// Asterisk `Uniqueid`.
    pub unique_id: String,
    /// Asterisk `Linkedid` (the call it belongs to).
    pub linked_id: String,
    /// Asterisk channel name, e.g. `PJSIP/1001-0000002a`, `Local/1001@sim-phone-00000001;1`.
    pub name: String,
    /// Asterisk `ChannelState` (0 down … 6 up; 5 ringing).
    pub state: u8,
    pub caller_id_name: String,
    pub caller_id_num: String,
    pub connected_name: String,
    pub connected_num: String,
    pub context: String,
    pub exten: String,
    /// Bridge it is in (`BridgeUniqueid`), if any.
    pub bridge: Option<String>,
    /// The channel that dialled this one (`DialBegin`), by unique id.
    pub dialled_by: Option<String>,
    pub on_hold: bool,
    pub recording: bool,
    /// The channel variable `FROM_DID`, when seen.
    pub did: Option<String>,
    /// Queue it waits in (`QueueCallerJoin` … `QueueCallerLeave`), if any.
    pub queue: Option<String>,
}

impl Channel {
    /// The device part of the channel name: everything before the last `-`, so
    /// `PJSIP/1001-0000002a` → `PJSIP/1001` and `Local/1001@sim-phone-00000001;1` →
    /// `Local/1001@sim-phone`.
    pub fn device(&self) -> &str {
        device_of(&self.name)
    }
    /// A `Local/…` channel (both halves).
    pub fn is_local(&self) -> bool {
        self.name.starts_with("Local/")
    }
}

/// The device part of a channel name (see [`Channel::device`]).
pub fn device_of(name: &str) -> &str {
    match name.rfind('-') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// One queue member (an agent).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Live id of the agent (minted when the member appeared in this queue).
    pub id: Uuid,
    pub queue: String,
    /// `Interface` / `Location`, e.g. `Local/1001@from-queue/n`.
    pub interface: String,
    /// `Name` / `MemberName`.
    pub name: String,
    pub state_interface: String,
    /// `Membership == dynamic`.
    pub dynamic: bool,
    pub paused: bool,
    pub paused_reason: String,
    pub penalty: u32,
    /// Asterisk device state number (0 UNKNOWN … 8 ONHOLD), see [`device_state_name`].
    pub status: u8,
    pub calls_taken: u64,
    /// Unix seconds (0: never).
    pub last_call: u64,
    pub last_pause: u64,
    pub login_time: u64,
}

/// Asterisk's device-state names by number (`include/asterisk/devicestate.h`).
pub fn device_state_name(n: u8) -> &'static str {
    match n {
        1 => "NOT_INUSE",
        2 => "INUSE",
        3 => "BUSY",
        4 => "INVALID",
        5 => "UNAVAILABLE",
        6 => "RINGING",
        7 => "RINGINUSE",
        8 => "ONHOLD",
        _ => "UNKNOWN",
    }
}

/// One running conference (ConfBridge).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conference {
    /// Live id of a room that is not configured (user generated); configured rooms get theirs
    /// from the model.
    pub id: Uuid,
    /// Unique ids of the channels in it.
    pub members: BTreeSet<String>,
    pub locked: bool,
}

/// The connection to the source of live state.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Connected; the snapshot taken at connect is applied and events follow.
    Up {
        since: SystemTime,
        /// Asterisk's version, as AMI reports it (simulator: "simulated").
        server: String,
    },
    /// Not connected (never was, or lost): live state is unknown, actions fail.
    Down {
        since: SystemTime,
        /// Why, for an administrator (never a secret).
        reason: String,
    },
}

impl Link {
    pub fn is_up(&self) -> bool {
        matches!(self, Link::Up { .. })
    }
}

/// Everything a backend knows. Replaced wholesale at (re)connect (a new snapshot), changed in
/// place by events.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub link: Link,
    /// By unique id.
    pub channels: HashMap<String, Channel>,
    /// By (queue, interface).
    pub members: BTreeMap<(String, String), Member>,
    /// Queues Asterisk knows (name → calls waiting).
    pub queues: BTreeMap<String, u32>,
    /// Running conferences by name.
    pub conferences: BTreeMap<String, Conference>,
    /// Extension numbers with Do Not Disturb on (FreePBX's AstDB `DND/<ext>`).
    pub dnd: BTreeSet<String>,
    /// Presence published per extension (`CustomPresence:<ext>`): (state, note).
    pub presence: HashMap<String, (String, String)>,
    /// Events applied since the process started (metrics, status page).
    pub events: u64,
}

impl Facts {
    /// No connection yet.
    pub fn down(reason: impl Into<String>) -> Facts {
        Facts {
            link: Link::Down {
                since: SystemTime::now(),
                reason: reason.into(),
            },
            channels: HashMap::new(),
            members: BTreeMap::new(),
            queues: BTreeMap::new(),
            conferences: BTreeMap::new(),
            dnd: BTreeSet::new(),
            presence: HashMap::new(),
            events: 0,
        }
    }
}

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
