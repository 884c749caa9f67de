//! The wire JSON of every Configuration API resource: the one definition, used by the client
//! (`api::client`) and the embedded server (`server::resources`).
//!
//! Input is tolerant as the PHP client needs it: numbers may arrive as numeric strings,
//! strings as numbers, `null` as an empty value, and unknown fields are kept in `extra` so a
//! GET-modify-PUT round trip is lossless. Output uses real JSON numbers and booleans.
//! Password fields are [`Secret`]s so a `{:?}` of a resource never prints them.

use crate::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Fields the server does not know, echoed back verbatim.
pub type Extra = Map<String, Value>;

/// R1 `server/coreServers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreServer {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub slug: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub broker_host: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub broker_port: Option<i64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R2 `core/{cs}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreConfig {
    #[serde(default, deserialize_with = "de::string")]
    pub server_id: String,
}

/// R3 `asterisk/{cs}`: the Asterisk settings of a core server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AsteriskSettings {
    #[serde(default, deserialize_with = "de::string")]
    pub originating_context: String,
    #[serde(default, deserialize_with = "de::string")]
    pub redirecting_context: String,
    #[serde(default, deserialize_with = "de::string")]
    pub music_on_hold_class: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R7 `core/{cs}/users`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default = "de::yes", deserialize_with = "de::boolean")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "de::boolean")]
    pub full: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub last_password_changed_at: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_display_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_id: Option<String>,
    #[serde(default, deserialize_with = "de::boolean")]
    pub restricted: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R8 `contact/{cs}/users/{userId}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub first_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub last_name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub user_configuration_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R9 `contact/{cs}/users/{userId}/emailAddresses`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailAddress {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "de::string")]
    pub kind: String,
    #[serde(default, deserialize_with = "de::string")]
    pub address: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R10 `contact/{cs}/users/{userId}/phoneNumbers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "de::string")]
    pub kind: String,
    #[serde(default, deserialize_with = "de::string")]
    pub number: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `asterisk/{cs}/extensions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub extension: String,
    #[serde(default, deserialize_with = "de::string")]
    pub display_name: String,
    // Field order is the order a plan lists changed fields in (see reconcile::diff::changes).
    #[serde(default, deserialize_with = "de::string")]
    pub peer: String,
    #[serde(default, deserialize_with = "de::boolean")]
    pub auto_answer: bool,
    #[serde(default, deserialize_with = "de::string")]
    pub alt_origination_method: String,
    #[serde(default, deserialize_with = "de::string")]
    pub agent_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub agent_location: String,
    #[serde(default, deserialize_with = "de::string")]
    pub agent_interface: String,
    #[serde(default, deserialize_with = "de::i64")]
    pub agent_penalty: i64,
    #[serde(default, deserialize_with = "de::boolean")]
    pub agent_paused: bool,
    #[serde(default, deserialize_with = "de::string")]
    pub originating_context_override: String,
    #[serde(default, deserialize_with = "de::string")]
    pub redirecting_context_override: String,
    #[serde(default, deserialize_with = "de::i64")]
    pub originate_timeout_override: i64,
    #[serde(default, deserialize_with = "de::string")]
    pub voice_mail_context: String,
    #[serde(default, deserialize_with = "de::string")]
    pub voice_mail_box: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_display_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_id: Option<String>,
    #[serde(default, deserialize_with = "de::boolean")]
    pub restricted: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R11 `asterisk/{cs}/queues`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub identifier: String,
    #[serde(default, deserialize_with = "de::string")]
    pub display_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub destination_extension: String,
    #[serde(default, deserialize_with = "de::string")]
    pub destination_context: String,
    #[serde(default = "de::yes", deserialize_with = "de::boolean")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "de::boolean")]
    pub restricted: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_display_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R12 `asterisk/{cs}/conferenceRooms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceRoom {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub identifier: String,
    #[serde(default, deserialize_with = "de::string")]
    pub destination_extension: String,
    #[serde(default, deserialize_with = "de::string")]
    pub destination_context: String,
    #[serde(default, deserialize_with = "de::boolean")]
    pub restricted: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_display_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub permission_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R13 `asterisk/{cs}/parkingLots`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkingLot {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub identifier: String,
    #[serde(default, deserialize_with = "de::string")]
    pub name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub destination_extension: String,
    #[serde(default, deserialize_with = "de::string")]
    pub destination_context: String,
    #[serde(default, deserialize_with = "de::boolean")]
    pub restricted: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R14 `asterisk/{cs}/pbxServers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PbxServer {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub display_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub host: String,
    #[serde(default, deserialize_with = "de::i64")]
    pub port: i64,
    #[serde(default, deserialize_with = "de::string")]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default = "de::yes", deserialize_with = "de::boolean")]
    pub enabled: bool,
    /// Omitted when empty (cxpanel never sends it; the server then keeps its default).
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::string"
    )]
    pub cdr_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub cdr_host: String,
    #[serde(default, deserialize_with = "de::i64")]
    pub cdr_port: i64,
    #[serde(default, deserialize_with = "de::string")]
    pub cdr_username: String,
    #[serde(default)]
    pub cdr_password: Secret,
    #[serde(default, deserialize_with = "de::string")]
    pub recording_agent_identifier: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R15 `asterisk/voicemailAgents`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoicemailAgent {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub identifier: String,
    #[serde(default, deserialize_with = "de::string")]
    pub root_path: String,
    #[serde(default, deserialize_with = "de::string")]
    pub resource_host: String,
    #[serde(default, deserialize_with = "de::string")]
    pub resource_extension: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R17 `asterisk/recordingAgents`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingAgent {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub identifier: String,
    #[serde(default, deserialize_with = "de::string")]
    pub root_path: String,
    #[serde(default, deserialize_with = "de::string")]
    pub resource_host: String,
    #[serde(default, deserialize_with = "de::string")]
    pub resource_extension: String,
    #[serde(default, deserialize_with = "de::string")]
    pub file_name_mask: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R18 `server/administrators` (note `userName` with a capital N, unlike users).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Administrator {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub user_name: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default, deserialize_with = "de::boolean")]
    pub super_user: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R19 `asterisk/{cs}/extensionGroups`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionGroup {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub display_name: String,
    #[serde(default, deserialize_with = "de::boolean")]
    pub public_group: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R20 `server/coreServers/{id}/license`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct License {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de::string")]
    pub serial: String,
    #[serde(rename = "type", default, deserialize_with = "de::string")]
    pub kind: String,
    #[serde(default, deserialize_with = "de::string")]
    pub licensed_to: String,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub expiration_date: Option<i64>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub maintenance_expiration_date: Option<i64>,
    #[serde(default, deserialize_with = "de::i64")]
    pub client_connections: i64,
    #[serde(default, deserialize_with = "de::i64")]
    pub configured_users: i64,
}

/// R20 `…/license/moduleLicenses`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleLicense {
    #[serde(default, deserialize_with = "de::string")]
    pub id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub module_id: String,
}

/// R20 `…/moduleLicenses/{id}/properties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleLicenseProperty {
    #[serde(default, deserialize_with = "de::string")]
    pub id: String,
    #[serde(default, deserialize_with = "de::string")]
    pub key: String,
    #[serde(default, deserialize_with = "de::string")]
    pub value: String,
    #[serde(default, deserialize_with = "de::string")]
    pub display_name: String,
    #[serde(default, deserialize_with = "de::string")]
    pub description: String,
    #[serde(default, deserialize_with = "de::boolean")]
    pub display: bool,
}

/// R20 `…/license/bind/{serial}` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseBind {
    #[serde(default, deserialize_with = "de::boolean")]
    pub cancel: bool,
    #[serde(default, deserialize_with = "de::string")]
    pub licensed_to: String,
    #[serde(default, deserialize_with = "de::string")]
    pub email: String,
}

/// R21 `server/brand`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Brand {
    #[serde(default, deserialize_with = "de::string")]
    pub version: String,
    #[serde(default, deserialize_with = "de::string")]
    pub build: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Error bodies of the embedded server: `{"status": 412, "message": "No username provided."}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub message: String,
}

/// Tolerant field deserialisers (PHP clients send `"5038"` for numbers and `null` for "").
pub mod de {
    use super::*;

    pub fn yes() -> bool {
        true
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "invalid type: {}, expected a string",
                kind(&other)
            ))),
        }
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Ok(opt_i64(d)?.unwrap_or_default())
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("invalid number {n}, expected an integer"))
                }),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                serde::de::Error::custom(format!("invalid value {s:?}, expected an integer"))
            }),
            other => Err(serde::de::Error::custom(format!(
                "invalid type: {}, expected an integer",
                kind(&other)
            ))),
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(b),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(serde::de::Error::custom(format!(
                    "invalid value {s:?}, expected a boolean"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "invalid type: {}, expected a boolean",
                kind(&other)
            ))),
        }
    }

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_strings_and_nulls_are_accepted() {
        let p: PbxServer = serde_json::from_str(
            r#"{"host":"localhost","port":"5038","cdrPort":3306,"enabled":true,"password":"x","cdrName":null}"#,
        )
        .unwrap();
        assert_eq!(p.port, 5038);
        assert_eq!(p.cdr_port, 3306);
        assert_eq!(p.cdr_name, "");
        let out = serde_json::to_value(&p).unwrap();
        assert_eq!(out["port"], serde_json::json!(5038));
    }

    #[test]
    fn unknown_fields_round_trip() {
        let e: Extension =
            serde_json::from_str(r#"{"extension":1001,"displayName":"A","fooBar":[1,2]}"#).unwrap();
        assert_eq!(e.extension, "1001");
        let out = serde_json::to_value(&e).unwrap();
        assert_eq!(out["fooBar"], serde_json::json!([1, 2]));
        assert_eq!(out["autoAnswer"], serde_json::json!(false));
    }

    #[test]
    fn debug_hides_passwords() {
        let u: User = serde_json::from_str(r#"{"username":"a","password":"s3cret"}"#).unwrap();
        assert!(!format!("{u:?}").contains("s3cret"));
    }
}
