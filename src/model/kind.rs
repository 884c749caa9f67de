//! The kinds of objects the sync manages, typed once for every layer: plans, the agent's state
//! records, ownership (cxpanel's `cxpanel_managed_items` rows), counts and frozen kinds.
//!
//! A kind serialises as its name (`administrator`, `conference_room`). Its storage name
//! ([`Kind::type_name`]) is the cxpanel module's `type` string where the module has one
//! (`admin`); it feeds the agent's UUID v5 ids and the state file, so it never changes.
//! Strings are turned into kinds once, where they enter (the FreePBX reader, the state file).

/// The kinds of objects a plan touches, in display order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
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

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 16] = [
        Kind::CoreServer,
        Kind::AsteriskSettings,
        Kind::VoicemailAgent,
        Kind::VoicemailAgentIdentifier,
        Kind::RecordingAgent,
        Kind::PbxServer,
        Kind::Administrator,
        Kind::Extension,
        Kind::User,
        Kind::Contact,
        Kind::Email,
        Kind::Phone,
        Kind::ManagingUser,
        Kind::Queue,
        Kind::ConferenceRoom,
        Kind::ParkingLot,
    ];

    /// Its name, as it serialises (`conference_room`): status keys, metric labels.
    pub fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            _ => unreachable!("a unit variant serialises as a string"),
        }
    }

    /// The kind whose [`Kind::type_name`] is `s` (cxpanel's `type` column, the state file).
    pub fn from_type_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_name() == s)
    }

    /// How a person calls it (`extension`, `conference room`).
    pub fn label(self) -> &'static str {
        match self {
            Kind::CoreServer => "core server",
            Kind::AsteriskSettings => "asterisk settings",
            Kind::VoicemailAgent => "voicemail agent",
            Kind::VoicemailAgentIdentifier => "voicemail agent binding",
            Kind::RecordingAgent => "recording agent",
            Kind::PbxServer => "pbx server",
            Kind::Administrator => "administrator",
            Kind::Extension => "extension",
            Kind::User => "user",
            Kind::Contact => "contact",
            Kind::Email => "e-mail",
            Kind::Phone => "phone number",
            Kind::ManagingUser => "managing user",
            Kind::Queue => "queue",
            Kind::ConferenceRoom => "conference room",
            Kind::ParkingLot => "parking lot",
        }
    }
    /// Section heading in text output.
    pub fn heading(self) -> &'static str {
        match self {
            Kind::CoreServer => "Core server",
            Kind::AsteriskSettings => "Asterisk settings",
            Kind::VoicemailAgent => "Voicemail agent",
            Kind::VoicemailAgentIdentifier => "Voicemail agent bindings",
            Kind::RecordingAgent => "Recording agent",
            Kind::PbxServer => "PBX servers",
            Kind::Administrator => "Administrators",
            Kind::Extension => "Extensions",
            Kind::User => "Users",
            Kind::Contact => "Contacts",
            Kind::Email => "E-mail addresses",
            Kind::Phone => "Phone numbers",
            Kind::ManagingUser => "Managing users (bindings)",
            Kind::Queue => "Queues",
            Kind::ConferenceRoom => "Conference rooms",
            Kind::ParkingLot => "Parking lots",
        }
    }
    /// The type name used for ids and ownership records (cxpanel_managed_items' names where
    /// the module has one).
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::CoreServer => "core_server",
            Kind::AsteriskSettings => "asterisk",
            Kind::VoicemailAgent => "voicemail_agent",
            Kind::VoicemailAgentIdentifier => "voicemail_identifier",
            Kind::RecordingAgent => "recording_agent",
            Kind::PbxServer => "pbx_server",
            Kind::Administrator => "admin",
            Kind::Extension => "extension",
            Kind::User => "user",
            Kind::Contact => "contact",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::ManagingUser => "managing_user",
            Kind::Queue => "queue",
            Kind::ConferenceRoom => "conference_room",
            Kind::ParkingLot => "parking_lot",
        }
    }
    /// Kinds the safety valve watches (objects the agent may delete; see [`super::valve`]).
    pub fn guarded(self) -> bool {
        matches!(
            self,
            Kind::Administrator
                | Kind::Extension
                | Kind::User
                | Kind::Queue
                | Kind::ConferenceRoom
                | Kind::ParkingLot
                | Kind::PbxServer
                | Kind::Email
                | Kind::Phone
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Serde for a kind written as its [`Kind::type_name`] (cxpanel's `type` strings in exported
/// snapshots): `#[serde(with = "crate::model::kind::as_type_name")]`.
pub mod as_type_name {
    use super::Kind;
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

    #[test]
    fn type_names_are_distinct_and_parse_back() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_type_name(k.type_name()), Some(k));
        }
        assert_eq!(Kind::from_type_name("admin"), Some(Kind::Administrator));
        assert_eq!(Kind::from_type_name("administrator"), None);
    }

    #[test]
    fn a_kind_serialises_as_its_name() {
        let v = serde_json::to_value(Kind::ConferenceRoom).unwrap();
        assert_eq!(v, serde_json::json!("conference_room"));
        let v = serde_json::to_value(Kind::Administrator).unwrap();
        assert_eq!(v, serde_json::json!("administrator"));
    }
}
