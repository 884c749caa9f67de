//! `--explain KIND/KEY`: one object end to end, from the FreePBX row to live in iSymphony.
//!
//! [`explain`] gathers plain data ([`Explanation`]) in three steps and [`render`] prints it
//! as text or JSON:
//!
//! - [`freepbx`]: where FreePBX keeps the object, the desired iSymphony object the mapping made
//!   of it and the rules that shaped or skipped it (the same `freepbx::read` and
//!   `mapping::desired` a pass runs);
//! - [`isymphony`]: the object iSymphony holds (id, owned or adopted), the pending change
//!   field by field (the pass's own `diff`, filtered to this object, passwords masked, licence
//!   holds applied), and whether the Live API lists it, with the likely reason when not.
//!
//! [`readiness`] is its per-pass cousin: after a pass, which configured objects are not live.
//!
//! It reads only what this one object needs from iSymphony: the core server, the object's
//! collection (and the users, for an extension's binding), its sub-resources, and one Live
//! API list. Nothing is written, not even the agent's state store.

mod freepbx;
mod isymphony;
pub mod readiness;
pub mod render;

use crate::api::client::RequestCounts;
use crate::config::Config;
use crate::model::Kind;
use crate::reconcile::{self, ReconcileError};
use serde::Serialize;

/// The kinds `--explain` knows, by the name the command line uses.
pub const KINDS: [Kind; 6] = [
    Kind::Extension,
    Kind::User,
    Kind::Queue,
    Kind::ConferenceRoom,
    Kind::ParkingLot,
    Kind::Administrator,
];

/// `KIND/KEY` from the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub kind: Kind,
    pub key: String,
}

impl std::str::FromStr for ObjectRef {
    type Err = ExplainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ExplainError::Usage(s.to_string());
        let (kind, key) = s.split_once('/').ok_or_else(bad)?;
        let kind = KINDS
            .into_iter()
            .find(|k| k.name() == kind.trim())
            .ok_or_else(bad)?;
        let key = key.trim();
        if key.is_empty() || key.chars().any(char::is_control) {
            return Err(bad());
        }
        Ok(ObjectRef {
            kind,
            key: key.to_string(),
        })
    }
}

/// Where FreePBX keeps the object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FreepbxSide {
    /// How the mapping selects objects (cxpanel tables, User Manager, no cxpanel).
    pub mode: String,
    /// FreePBX has rows for it.
    pub found: bool,
    /// One line per row read (table, key, the columns that matter; never a password).
    pub rows: Vec<String>,
    /// voicemail.conf FILE:LINE of its mailbox (extensions).
    pub voicemail: Option<String>,
    /// Why the mapping left it out (disabled, excluded by a cxpanel setting, …).
    pub skipped: Option<String>,
    /// Rules of this pass that apply to its kind (frozen, deletions held).
    pub rules: Vec<String>,
}

/// The object iSymphony holds.
#[derive(Debug, Clone, Serialize)]
pub struct HeldObject {
    pub id: Option<String>,
    /// `agent` (its id is the agent's own), `adopted`, `cxpanel` (the module's record),
    /// `all unknown items` (`clean_unknown_items`), or `not managed`.
    pub ownership: String,
    /// Values that decide liveness (a queue's `enabled`, an extension's managing user).
    pub notes: Vec<String>,
    /// The last pass that wrote it, as a sentence for people.
    pub last_written: String,
    /// The same, as the agent's state records it; none when it never wrote it.
    pub last_write: Option<crate::reconcile::state::writes::LastWrite>,
}

/// One pending change of the object.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    /// `+ create extension 1001 "Alice"`, `~ update …: field "a" -> "b"` (passwords `***`).
    pub line: String,
    pub action: String,
    pub kind: Kind,
    pub changes: Vec<crate::reconcile::plan::Change>,
}

/// Whether iSymphony serves the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum Liveness {
    /// Its Live API list holds it under its `configurationId`.
    Live,
    /// Configured but not listed; the likely reason.
    NotLive(String),
    /// The Live API has no such objects (administrators, parking lots) or it is not configured.
    NotApplicable(String),
    /// The Live API could not tell (none, refused, failed).
    Unknown(String),
}

/// Everything `--explain` says about one object.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub object: ObjectRef,
    /// Target URL (without credentials) and core server.
    pub target: String,
    pub freepbx: FreepbxSide,
    /// The desired iSymphony object, passwords masked (None: FreePBX does not want it).
    pub desired: Option<serde_json::Value>,
    pub isymphony: Option<HeldObject>,
    pub pending: Vec<Pending>,
    /// Changes held after a licence refusal (sent again when the desired state changes).
    pub held: Vec<String>,
    pub live: Liveness,
    /// Requests sent to the Configuration API and to the Live API.
    pub requests: RequestCounts,
    pub live_requests: RequestCounts,
    pub warnings: Vec<String>,
}

impl Explanation {
    /// `--dry-run`'s convention: 0 in sync and live, 2 pending or not live.
    pub fn exit_code(&self) -> u8 {
        if !self.pending.is_empty() || matches!(self.live, Liveness::NotLive(_)) {
            2
        } else {
            0
        }
    }
}

/// Why there is no explanation.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0:?} is not KIND/KEY (KIND one of extension, user, queue, conference_room, parking_lot, administrator)")]
    Usage(String),
    #[error("{label} {key} is unknown: FreePBX does not have it and iSymphony does not hold it{}", did_you_mean(.suggestions))]
    Unknown {
        label: &'static str,
        key: String,
        suggestions: Vec<String>,
    },
    #[error(transparent)]
    Pass(#[from] ReconcileError),
    /// The agent stopped while the status page was explaining.
    #[error("the agent is shutting down")]
    ShuttingDown,
}

fn did_you_mean(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; closest keys: {}", s.join(", "))
    }
}

/// Up to three known keys closest to `key` (Jaro-Winkler, then the key itself).
pub fn closest(key: &str, known: &[String]) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(s, _)| *s > 0.6)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

/// Every key FreePBX (or the desired state) knows for `kind`, sorted (`known_keys` does): the status page's list
/// of a kind's objects. One FreePBX read, nothing from iSymphony.
pub async fn keys(cfg: &Config, kind: Kind) -> Result<Vec<String>, ExplainError> {
    let snap = crate::freepbx::read(cfg)
        .await
        .map_err(ReconcileError::from)?;
    let input = reconcile::source::from_snapshot(&snap, cfg);
    Ok(freepbx::known_keys(&snap, &input.desired, kind))
}

/// Explain `obj` against the configured FreePBX and target.
pub async fn explain(cfg: &Config, obj: &ObjectRef) -> Result<Explanation, ExplainError> {
    let snap = crate::freepbx::read(cfg)
        .await
        .map_err(ReconcileError::from)?;
    let input = reconcile::source::from_snapshot(&snap, cfg);
    let fp = freepbx::side(&snap, &input.desired, cfg, obj);
    let desired = freepbx::desired_json(&input.desired, obj);
    let known = freepbx::known_keys(&snap, &input.desired, obj.kind);
    let side = isymphony::gather(cfg, input, obj).await?;
    if !fp.found && desired.is_none() && side.held.is_none() {
        return Err(ExplainError::Unknown {
            label: obj.kind.label(),
            key: obj.key.clone(),
            suggestions: closest(&obj.key, &known),
        });
    }
    Ok(Explanation {
        object: obj.clone(),
        target: side.target,
        freepbx: fp,
        desired,
        isymphony: side.held,
        pending: side.pending,
        held: side.holds,
        live: side.live,
        requests: side.requests,
        live_requests: side.live_requests,
        warnings: side.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_slash_key_parses_and_bad_forms_are_usage_errors() {
        let o: ObjectRef = "conference_room/8000".parse().unwrap();
        assert_eq!((o.kind, o.key.as_str()), (Kind::ConferenceRoom, "8000"));
        for bad in [
            "extension",
            "extension/",
            "pbx_server/x",
            "ext/1001",
            "user/a\nb",
        ] {
            assert!(
                matches!(bad.parse::<ObjectRef>(), Err(ExplainError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn closest_keys_are_ranked_and_bounded() {
        let known: Vec<String> = ["1001", "1002", "1010", "400", "alice"]
            .map(String::from)
            .to_vec();
        let c = closest("1011", &known);
        assert_eq!(c.len(), 3);
        assert!(c.contains(&"1010".to_string()), "{c:?}");
        assert!(!c.contains(&"alice".to_string()), "{c:?}");
        assert!(closest("zzzz", &known).is_empty());
    }
}
