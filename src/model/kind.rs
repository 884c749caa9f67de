//! The kinds of objects the sync manages, typed once for every layer: plans, the agent's state
//! records, ownership (cxpanel's `cxpanel_managed_items` rows), counts and frozen kinds.
//!
//! A kind serialises as its name (`administrator`, `conference_room`). Its storage name
//! ([`Kind::type_name`]) is the cxpanel module's `type` string where the module has one
//! (`admin`); it feeds the agent's UUID v5 ids and the state file, so it never changes.
//! Strings are turned into kinds once, where they enter (the FreePBX reader, the state file).
//!
//! Every fact about a kind sits in one table, [`Kind::facts`], an exhaustive match: a new
//! variant does not compile until its row is written. The list of kinds is derived (strum's
//! `EnumIter`), and so are the lists built from the table (what a read feeds, what a
//! login carries). The collection a kind lives in is described in `api::resource`.

use strum::IntoEnumIterator;

/// The kinds of objects a plan touches, in display order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Kind {
    CoreServer,
    AsteriskSettings,
    VoicemailAgent,
    VoicemailAgentIdentifier,
    RecordingAgent,
    PbxServer,
    Administrator,
    Extension,
    User,
    Contact,
    Email,
    Phone,
    ManagingUser,
    Queue,
    ConferenceRoom,
    ParkingLot,
}

/// What every layer needs to know about one kind: one row of [`Kind::facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The storage name: ids and ownership records (cxpanel_managed_items' names where the
    /// module has one). Never changes.
    pub type_name: &'static str,
    /// How a person calls it (`extension`, `conference room`).
    pub label: &'static str,
    /// Section heading in text output.
    pub heading: &'static str,
    /// The safety valve watches its deletions (objects the agent may delete).
    pub guarded: bool,
    /// Execution stage of its creates and updates: parents before children, bindings after
    /// both ends exist.
    pub stage: u8,
    /// Execution stage of its deletes: children before parents.
    pub delete_stage: u8,
    /// Other kinds whose collection must have been read for its operations to be planned
    /// (a contact needs its user read; a binding needs both the extension and the user).
    pub reads: &'static [Kind],
    /// The kind whose natural key is also its key: its operations stand and fall with that
    /// object (a user's contact, e-mails and phones by username; the binding by extension).
    pub keyed_by: Option<Kind>,
}

/// A kind that needs only its own collection read and has its own key.
const ALONE: (&[Kind], Option<Kind>) = (&[], None);
/// A user's sub-resource: keyed by username, needs the user read.
const OF_USER: (&[Kind], Option<Kind>) = (&[Kind::User], Some(Kind::User));

impl Kind {
    /// Every kind, in display order (derived: a new variant is in it).
    pub fn all() -> impl Iterator<Item = Kind> {
        Kind::iter()
    }

    /// The facts of this kind: the one table (see [`Facts`]).
    pub const fn facts(self) -> Facts {
        /// One row: names, guarded, stages (create/update, delete), what it hangs off.
        const fn row(
            names: (&'static str, &'static str, &'static str),
            guarded: bool,
            (stage, delete_stage): (u8, u8),
            (reads, keyed_by): (&'static [Kind], Option<Kind>),
        ) -> Facts {
            let (type_name, label, heading) = names;
            Facts {
                type_name,
                label,
                heading,
                guarded,
                stage,
                delete_stage,
                reads,
                keyed_by,
            }
        }
        use Kind::*;
        // (type name, label, heading), guarded, (stage, delete stage), (reads, keyed by)
        #[rustfmt::skip]
        let f = match self {
            CoreServer => row(("core_server", "core server", "Core server"), false, (0, 8), ALONE),
            AsteriskSettings => row(("asterisk", "asterisk settings", "Asterisk settings"), false, (1, 7), ALONE),
            VoicemailAgent => row(("voicemail_agent", "voicemail agent", "Voicemail agent"), false, (1, 7), ALONE),
            VoicemailAgentIdentifier => row(("voicemail_identifier", "voicemail agent binding", "Voicemail agent bindings"), false, (1, 8), ALONE),
            RecordingAgent => row(("recording_agent", "recording agent", "Recording agent"), false, (1, 7), ALONE),
            PbxServer => row(("pbx_server", "pbx server", "PBX servers"), true, (1, 8), ALONE),
            Administrator => row(("admin", "administrator", "Administrators"), true, (2, 7), ALONE),
            Extension => row(("extension", "extension", "Extensions"), true, (2, 7), ALONE),
            User => row(("user", "user", "Users"), true, (2, 7), ALONE),
            Contact => row(("contact", "contact", "Contacts"), false, (3, 6), OF_USER),
            Email => row(("email", "e-mail", "E-mail addresses"), true, (3, 6), OF_USER),
            Phone => row(("phone", "phone number", "Phone numbers"), true, (3, 6), OF_USER),
            ManagingUser => row(("managing_user", "managing user", "Managing users (bindings)"), false, (4, 6), (&[Extension, User], Some(Extension))),
            Queue => row(("queue", "queue", "Queues"), true, (5, 7), ALONE),
            ConferenceRoom => row(("conference_room", "conference room", "Conference rooms"), true, (5, 7), ALONE),
            ParkingLot => row(("parking_lot", "parking lot", "Parking lots"), true, (5, 7), ALONE),
        };
        f
    }

    /// Its name, as it serialises (`conference_room`): status keys, metric labels.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The kind whose [`Kind::type_name`] is `s` (cxpanel's `type` column, the state file).
    pub fn from_type_name(s: &str) -> Option<Kind> {
        Kind::all().find(|k| k.type_name() == s)
    }

    /// How a person calls it (`extension`, `conference room`).
    pub fn label(self) -> &'static str {
        self.facts().label
    }
    /// Section heading in text output.
    pub fn heading(self) -> &'static str {
        self.facts().heading
    }
    /// The type name used for ids and ownership records (cxpanel_managed_items' names where
    /// the module has one).
    pub fn type_name(self) -> &'static str {
        self.facts().type_name
    }
    /// Kinds the safety valve watches (objects the agent may delete; see `reconcile::valve`).
    pub fn guarded(self) -> bool {
        self.facts().guarded
    }
    /// This kind and the kinds whose operations need its collection read, in display order.
    pub fn fed_by_read(self) -> Vec<Kind> {
        Kind::all()
            .filter(|k| *k == self || k.facts().reads.contains(&self))
            .collect()
    }
    /// The kinds keyed by this kind's natural key (they stand and fall with its object).
    pub fn keyed_below(self) -> Vec<Kind> {
        Kind::all()
            .filter(|k| k.facts().keyed_by == Some(self))
            .collect()
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Serde for a kind written as its [`Kind::type_name`] (cxpanel's `type` strings in exported
/// snapshots): `#[serde(with = "crate::model::kind::as_type_name")]`.
pub mod as_type_name {
    use crate::model::kind::Kind;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(k.type_name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let s = String::deserialize(d)?;
        Kind::from_type_name(&s).ok_or_else(|| D::Error::custom(format!("unknown type {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn type_names_are_distinct_and_parse_back() {
        let mut seen = HashSet::new();
        for k in Kind::iter() {
            assert!(seen.insert(k.type_name()), "{k:?}: type name used twice");
            assert_eq!(Kind::from_type_name(k.type_name()), Some(k));
        }
        assert_eq!(Kind::from_type_name("admin"), Some(Kind::Administrator));
        assert_eq!(Kind::from_type_name("administrator"), None);
    }

    #[test]
    fn a_kind_serialises_as_its_name() {
        for k in Kind::iter() {
            let v = serde_json::to_value(k).unwrap();
            assert_eq!(v, serde_json::json!(k.name()), "{k:?}");
            assert_eq!(serde_json::from_value::<Kind>(v).unwrap(), k);
        }
        assert_eq!(Kind::ConferenceRoom.name(), "conference_room");
        assert_eq!(Kind::Administrator.name(), "administrator");
    }

    /// Parents run before children, deletes of children before deletes of parents.
    #[test]
    fn what_a_kind_needs_comes_earlier_and_is_deleted_later() {
        for k in Kind::iter() {
            let f = k.facts();
            for parent in f.reads.iter().chain(&f.keyed_by) {
                assert!(parent.facts().stage < f.stage, "{k:?} after {parent:?}");
                assert!(parent.facts().delete_stage > f.delete_stage, "{k:?}");
            }
        }
        assert_eq!(
            Kind::User.fed_by_read(),
            [
                Kind::User,
                Kind::Contact,
                Kind::Email,
                Kind::Phone,
                Kind::ManagingUser
            ]
        );
        assert_eq!(Kind::Extension.keyed_below(), [Kind::ManagingUser]);
        assert_eq!(Kind::Queue.fed_by_read(), [Kind::Queue]);
    }
}
