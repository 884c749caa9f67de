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

/// One wire struct. Each field names its rule and the rule gives its serde attributes, so the
/// tolerant reading and the written shape are stated once here rather than on every field:
/// - `string`, `i64`, `boolean`: absent or null reads as empty, 0 or false;
/// - `yes`: a boolean that is true when absent;
/// - `opt_string`, `opt_i64`: absent or null reads as None, which is left out of the output;
/// - `null_i64`: as `opt_i64`, but None is written as `null`;
/// - `omit_empty`: a string left out of the output when empty;
/// - `secret`: a password, as sent; `flatten`: the unknown fields ([`Extra`]).
macro_rules! wire {
    (@munch $m:tt $name:ident [$($done:tt)*]
        $(#[$a:meta])* pub $f:ident: $t:ty = $rule:ident, $($rest:tt)*) => {
        wire!(@rule $rule $m $name [$($done)*] [$(#[$a])* pub $f: $t] $($rest)*);
    };
    (@munch [$($m:tt)*] $name:ident [$($done:tt)*]) => {
        $($m)*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $($done)* }
    };
    (@rule string $($k:tt)*) => { wire!(@with (default, deserialize_with = "de::string") $($k)*); };
    (@rule i64 $($k:tt)*) => { wire!(@with (default, deserialize_with = "de::i64") $($k)*); };
    (@rule boolean $($k:tt)*) => { wire!(@with (default, deserialize_with = "de::boolean") $($k)*); };
    (@rule yes $($k:tt)*) => { wire!(@with (default = "de::yes", deserialize_with = "de::boolean") $($k)*); };
    (@rule opt_string $($k:tt)*) => { wire!(@with (default, skip_serializing_if = "Option::is_none", deserialize_with = "de::opt_string") $($k)*); };
    (@rule opt_i64 $($k:tt)*) => { wire!(@with (default, skip_serializing_if = "Option::is_none", deserialize_with = "de::opt_i64") $($k)*); };
    (@rule null_i64 $($k:tt)*) => { wire!(@with (default, deserialize_with = "de::opt_i64") $($k)*); };
    (@rule omit_empty $($k:tt)*) => { wire!(@with (default, skip_serializing_if = "String::is_empty", deserialize_with = "de::string") $($k)*); };
    (@rule secret $($k:tt)*) => { wire!(@with (default) $($k)*); };
    (@rule flatten $($k:tt)*) => { wire!(@with (flatten) $($k)*); };
    // The field, with its serde attribute, joins the finished ones.
    (@with $serde:tt $m:tt $name:ident [$($done:tt)*] [$($field:tt)*] $($rest:tt)*) => {
        wire!(@munch $m $name [$($done)* #[serde $serde] $($field)*,] $($rest)*);
    };
    ($(#[$m:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        wire!(@munch [$(#[$m])*] $name [] $($fields)*);
    };
}

wire! {
    /// R1 `server/coreServers`.
    pub struct CoreServer {
        pub id: Option<String> = opt_string,
        pub slug: String = string,
        pub name: String = string,
        pub broker_host: Option<String> = opt_string,
        pub broker_port: Option<i64> = opt_i64,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R2 `core/{cs}`.
    pub struct CoreConfig {
        pub server_id: String = string,
    }
}

wire! {
    /// R3 `asterisk/{cs}`: the Asterisk settings of a core server.
    pub struct AsteriskSettings {
        pub originating_context: String = string,
        pub redirecting_context: String = string,
        pub music_on_hold_class: String = string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R7 `core/{cs}/users`.
    pub struct User {
        pub id: Option<String> = opt_string,
        pub username: String = string,
        pub password: Secret = secret,
        pub enabled: bool = yes,
        pub full: bool = boolean,
        pub display_name: Option<String> = opt_string,
        pub last_password_changed_at: Option<i64> = null_i64,
        pub permission_display_name: Option<String> = opt_string,
        pub permission_id: Option<String> = opt_string,
        pub restricted: bool = boolean,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R8 `contact/{cs}/users/{userId}`.
    pub struct Contact {
        pub id: Option<String> = opt_string,
        pub first_name: String = string,
        pub last_name: String = string,
        pub user_configuration_id: Option<String> = opt_string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R9 `contact/{cs}/users/{userId}/emailAddresses`.
    pub struct EmailAddress {
        pub id: Option<String> = opt_string,
        #[serde(rename = "type")]
        pub kind: String = string,
        pub address: String = string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R10 `contact/{cs}/users/{userId}/phoneNumbers`.
    pub struct PhoneNumber {
        pub id: Option<String> = opt_string,
        #[serde(rename = "type")]
        pub kind: String = string,
        pub number: String = string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R4 `asterisk/{cs}/extensions`.
    pub struct Extension {
        pub id: Option<String> = opt_string,
        pub extension: String = string,
        pub display_name: String = string,
        // Field order is the order a plan lists changed fields in (see reconcile::diff::changes).
        pub peer: String = string,
        pub auto_answer: bool = boolean,
        pub alt_origination_method: String = string,
        pub agent_name: String = string,
        pub agent_location: String = string,
        pub agent_interface: String = string,
        pub agent_penalty: i64 = i64,
        pub agent_paused: bool = boolean,
        pub originating_context_override: String = string,
        pub redirecting_context_override: String = string,
        pub originate_timeout_override: i64 = i64,
        pub voice_mail_context: String = string,
        pub voice_mail_box: String = string,
        pub permission_display_name: Option<String> = opt_string,
        pub permission_id: Option<String> = opt_string,
        pub restricted: bool = boolean,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R11 `asterisk/{cs}/queues`.
    pub struct Queue {
        pub id: Option<String> = opt_string,
        pub identifier: String = string,
        pub display_name: String = string,
        pub destination_extension: String = string,
        pub destination_context: String = string,
        pub enabled: bool = yes,
        pub restricted: bool = boolean,
        pub permission_display_name: Option<String> = opt_string,
        pub permission_id: Option<String> = opt_string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R12 `asterisk/{cs}/conferenceRooms`.
    pub struct ConferenceRoom {
        pub id: Option<String> = opt_string,
        pub name: String = string,
        pub identifier: String = string,
        pub destination_extension: String = string,
        pub destination_context: String = string,
        pub restricted: bool = boolean,
        pub permission_display_name: Option<String> = opt_string,
        pub permission_id: Option<String> = opt_string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R13 `asterisk/{cs}/parkingLots`.
    pub struct ParkingLot {
        pub id: Option<String> = opt_string,
        pub identifier: String = string,
        pub name: String = string,
        pub destination_extension: String = string,
        pub destination_context: String = string,
        pub restricted: bool = boolean,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R14 `asterisk/{cs}/pbxServers`.
    pub struct PbxServer {
        pub id: Option<String> = opt_string,
        pub display_name: String = string,
        pub host: String = string,
        pub port: i64 = i64,
        pub username: String = string,
        pub password: Secret = secret,
        pub enabled: bool = yes,
        /// Omitted when empty (cxpanel never sends it; the server then keeps its default).
        pub cdr_name: String = omit_empty,
        pub cdr_host: String = string,
        pub cdr_port: i64 = i64,
        pub cdr_username: String = string,
        pub cdr_password: Secret = secret,
        pub recording_agent_identifier: String = string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R15 `asterisk/voicemailAgents`.
    pub struct VoicemailAgent {
        pub id: Option<String> = opt_string,
        pub identifier: String = string,
        pub root_path: String = string,
        pub resource_host: String = string,
        pub resource_extension: String = string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R17 `asterisk/recordingAgents`.
    pub struct RecordingAgent {
        pub id: Option<String> = opt_string,
        pub identifier: String = string,
        pub root_path: String = string,
        pub resource_host: String = string,
        pub resource_extension: String = string,
        pub file_name_mask: String = string,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R18 `server/administrators` (note `userName` with a capital N, unlike users).
    pub struct Administrator {
        pub id: Option<String> = opt_string,
        pub user_name: String = string,
        pub password: Secret = secret,
        pub super_user: bool = boolean,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R19 `asterisk/{cs}/extensionGroups`.
    pub struct ExtensionGroup {
        pub id: Option<String> = opt_string,
        pub display_name: String = string,
        pub public_group: bool = boolean,
        pub extra: Extra = flatten,
    }
}

wire! {
    /// R20 `server/coreServers/{id}/license`.
    pub struct License {
        pub id: Option<String> = opt_string,
        pub serial: String = string,
        #[serde(rename = "type")]
        pub kind: String = string,
        pub licensed_to: String = string,
        pub expiration_date: Option<i64> = null_i64,
        pub maintenance_expiration_date: Option<i64> = null_i64,
        pub client_connections: i64 = i64,
        pub configured_users: i64 = i64,
    }
}

wire! {
    /// R20 `…/license/moduleLicenses`.
    pub struct ModuleLicense {
        pub id: String = string,
        pub module_id: String = string,
    }
}

wire! {
    /// R20 `…/moduleLicenses/{id}/properties`.
    pub struct ModuleLicenseProperty {
        pub id: String = string,
        pub key: String = string,
        pub value: String = string,
        pub display_name: String = string,
        pub description: String = string,
        pub display: bool = boolean,
    }
}

wire! {
    /// R20 `…/license/bind/{serial}` request body.
    pub struct LicenseBind {
        pub cancel: bool = boolean,
        pub licensed_to: String = string,
        pub email: String = string,
    }
}

wire! {
    /// R21 `server/brand`.
    pub struct Brand {
        pub version: String = string,
        pub build: String = string,
        pub extra: Extra = flatten,
    }
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
