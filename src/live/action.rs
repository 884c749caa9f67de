//! The actions a backend performs, with every value already checked ([`AmiValue`]); the Live
//! API routes build them from a client's body and the configured objects (so a backend never
//! sees client JSON), and map [`ActionError`] to a status.
//!
//! Each action is what FreePBX itself does for the same feature (docs/README-live.md has the
//! mapping to AMI).

use super::value::AmiValue;
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Ring `channel` (the extension's device or `altOriginationMethod`) and, when answered,
    /// dial `exten` in `context`.
    Originate {
        channel: AmiValue,
        context: AmiValue,
        exten: AmiValue,
        /// Caller id name and number shown on the phone (`"name" <number>`).
        caller_name: AmiValue,
        caller_number: AmiValue,
        timeout_ms: u64,
        auto_answer: bool,
    },
    /// FreePBX's `donotdisturb_set()`: AstDB `DND/<ext>` and, with device states, the
    /// `Custom:DND<ext>` and `Custom:DEVDND<dev>` lamps of the extension's devices.
    Dnd { extension: AmiValue, enabled: bool },
    /// FreePBX's `queues_member_login()`: a dynamic member.
    QueueAdd {
        queue: AmiValue,
        interface: AmiValue,
        state_interface: AmiValue,
        member_name: AmiValue,
        penalty: u32,
        paused: bool,
        /// The extension logging in: FreePBX also lights `Custom:QUEUE<dev>*<queue>` for each
        /// of its devices (AstDB `AMPUSER/<ext>/device`), the queue-toggle BLF. None: no lamp.
        extension: Option<AmiValue>,
    },
    /// FreePBX's `queues_member_logout()`: the member, and its lamps back to NOT_INUSE.
    QueueRemove {
        queue: AmiValue,
        interface: AmiValue,
        extension: Option<AmiValue>,
    },
    QueuePause {
        queue: AmiValue,
        interface: AmiValue,
        paused: bool,
        reason: AmiValue,
    },
    QueuePenalty {
        queue: AmiValue,
        interface: AmiValue,
        penalty: u32,
    },
    /// Move a call segment's channel to `exten` in `context`.
    Redirect {
        channel: AmiValue,
        context: AmiValue,
        exten: AmiValue,
    },
    /// Publish a user's status as the presence of its extensions (`CustomPresence:<ext>`).
    Presence {
        extensions: Vec<AmiValue>,
        /// One of Asterisk's presence states: `available`, `unavailable`, `away`, `xa`,
        /// `chat`, `dnd`.
        state: &'static str,
        note: AmiValue,
    },
}

/// Why an action failed, mapped to a status by the routes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// 404: the addressed object is gone (a segment that hung up, a member that left).
    #[error("{0}")]
    NotFound(String),
    /// 422: the request conflicts with the PBX's state (already logged in, static member).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 503: no connection to the PBX.
    #[error("the connection to Asterisk is down since {since}: {reason}", since = humantime::format_rfc3339_seconds(*since))]
    Unavailable { since: SystemTime, reason: String },
    /// 500: the PBX refused or failed.
    #[error("{0}")]
    Failed(String),
}
