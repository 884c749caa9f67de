//! The facts a pass learns and the agent's state store keeps (adoptions, pushed-password
//! hashes, added sub-items, licence refusals), and the fingerprints that summarise a desired
//! state. Plain data and pure functions: the diff makes and reads them; [`super::state`] stores
//! them in SQLite.

use crate::digest::sha1_hex;
use crate::model::Kind;
use std::collections::{BTreeSet, HashMap, HashSet};

/// One fact to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A server object with the natural key of a FreePBX object is now ours.
    Adopt { kind: Kind, id: String, key: String },
    /// The agent pushed (or verified) this password; `hh` is [`hash_of_hash`] of it.
    Password { kind: Kind, key: String, hh: String },
    /// The agent added this sub-item (e-mail address, phone number) to `owner`.
    Added {
        kind: Kind,
        owner: String,
        value: String,
    },
    /// The agent's sub-item is gone (removed by the agent or by someone else).
    Removed {
        kind: Kind,
        owner: String,
        value: String,
    },
}

impl Effect {
    /// The kind of object the fact is about.
    pub fn kind(&self) -> Kind {
        match self {
            Effect::Adopt { kind, .. }
            | Effect::Password { kind, .. }
            | Effect::Added { kind, .. }
            | Effect::Removed { kind, .. } => *kind,
        }
    }
}

/// A change iSymphony refused for licensing, held until what it was computed from changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Refusal {
    /// Kind, natural key and action of the operation.
    pub kind: Kind,
    pub key: String,
    pub action: String,
    /// Fingerprint of the operation and the desired state it came from.
    pub fp: String,
    /// The server's answer (status and message; never a request body).
    pub message: String,
}

/// What the state store knows, loaded once per pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub adopted: HashSet<(Kind, String)>,
    pub passwords: HashMap<(Kind, String), String>,
    pub added: HashMap<(Kind, String), BTreeSet<String>>,
    pub fingerprints: HashMap<String, String>,
    /// By (type name, natural key, action).
    pub refusals: HashMap<(Kind, String, String), Refusal>,
}

impl Known {
    /// What the state store's commit of these facts and fingerprints changes, applied here
    /// (a daemon's store keeps what it loaded up to date with it).
    pub fn apply(&mut self, effects: &[Effect], set: &[(String, String)], drop_: &[String]) {
        for e in effects {
            match e {
                Effect::Adopt { kind, id, .. } => {
                    self.adopted.insert((*kind, id.clone()));
                }
                Effect::Password { kind, key, hh } => {
                    self.passwords.insert((*kind, key.clone()), hh.clone());
                }
                Effect::Added { kind, owner, value } => {
                    let set = self.added.entry((*kind, owner.clone())).or_default();
                    set.insert(value.clone());
                }
                Effect::Removed { kind, owner, value } => {
                    let key = (*kind, owner.clone());
                    if let Some(set) = self.added.get_mut(&key) {
                        set.remove(value);
                        if set.is_empty() {
                            self.added.remove(&key);
                        }
                    }
                }
            }
        }
        for (k, v) in set {
            self.fingerprints.insert(k.clone(), v.clone());
        }
        for k in drop_ {
            self.fingerprints.remove(k);
        }
    }

    /// The held refusals as loaded, by kind, natural key and action.
    pub fn refusals_of(records: &[Refusal]) -> HashMap<(Kind, String, String), Refusal> {
        records
            .iter()
            .map(|r| ((r.kind, r.key.clone(), r.action.clone()), r.clone()))
            .collect()
    }
}

/// A password hash as the state store keeps it: SHA-1 over a fixed prefix and the lower-cased
/// hash, so the file never holds a value that could be replayed through `noHash`.
pub fn hash_of_hash(hash: &str) -> String {
    let mut data = b"isymphony-sync/pushed-password\0".to_vec();
    data.extend_from_slice(hash.trim().to_ascii_lowercase().as_bytes());
    sha1_hex(&data)
}

/// A fingerprint of any serialisable desired state.
pub fn fingerprint<T: serde::Serialize>(v: &T) -> String {
    let bytes =
        serde_json::to_vec(v).expect("a derived Serialize with string keys always serialises");
    sha1_hex(&bytes)
}
