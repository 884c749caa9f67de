//! The target's Live API (`…/communication_manager/rest/live/`), read-only and top-level only:
//! which configured objects iSymphony actually serves. `--explain` reads one list for one
//! object, readiness reads a handful after a pass; neither ever reads per object.
//!
//! A live object names its Configuration API counterpart in `configurationId` (Live API §1.3),
//! so "live" means: the list of its kind holds an element whose `configurationId` is the
//! configured object's id. Extensions bound to no full user and disabled queues are left out of
//! the lists by iSymphony itself (§1.5). A target without the Live API (404, iSymphony 3.1) or
//! whose licence refuses it (401/403) has [`Unavailable`] readiness, never an error of a pass.

use super::client::{ApiError, Client};
use super::paths::seg;
use crate::model::Kind;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The Live API's prefix where the Configuration API's is `api/resource/`.
const LIVE_PREFIX: &str = "communication_manager/rest/live/";

/// The kinds the Live API lists, with the collection name below a core server.
pub const LISTED: [(Kind, &str); 4] = [
    (Kind::Extension, "extensions"),
    (Kind::Queue, "queues"),
    (Kind::User, "users"),
    (Kind::ConferenceRoom, "conferences"),
];

/// The Live API collection of `kind` (None: the Live API has no such objects, e.g.
/// administrators and parking lots).
pub fn collection(kind: Kind) -> Option<&'static str> {
    LISTED.iter().find(|(k, _)| *k == kind).map(|(_, c)| *c)
}

/// The Live API's base URL for a Configuration API base URL (same host, port and scheme).
pub fn base_url(config_base: &str) -> String {
    let trimmed = config_base.trim_end_matches('/');
    for root in [
        super::paths::PREFIX.trim_end_matches('/'),
        super::paths::ALT_PREFIX.trim_end_matches('/'),
    ] {
        if let Some(host) = trimmed.strip_suffix(root) {
            return format!("{host}{LIVE_PREFIX}");
        }
    }
    format!("{trimmed}/../../{LIVE_PREFIX}")
}

/// The list path of `kind` below core server `slug` (None: not a listed kind).
pub fn list_path(slug: &str, kind: Kind) -> Option<String> {
    collection(kind).map(|c| format!("coreServers/getByName/{}/{c}", seg(slug)))
}

/// One element of a live list, only what readiness needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveItem {
    #[serde(default)]
    configuration_id: Option<String>,
}

/// Why the Live API cannot tell what is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// 404 on a list: this iSymphony has no Live API (3.1), or not for this core server.
    NoLiveApi,
    /// 401/403: the licence (or the account) does not allow the Live API.
    Refused(u16),
    /// No answer, a server error, a body that is not a list: may work next time.
    Failed(String),
}

impl Unavailable {
    /// Refusals repeat with the same request; failures may not.
    pub fn is_lasting(&self) -> bool {
        !matches!(self, Unavailable::Failed(_))
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NoLiveApi => f.write_str(
                "the target has no Live API (404: iSymphony before 3.2), so what it serves \
                 cannot be checked",
            ),
            Unavailable::Refused(s) => write!(
                f,
                "the target refuses its Live API ({s}: the iSymphony licence does not cover it)"
            ),
            Unavailable::Failed(e) => write!(f, "the Live API could not be read: {e}"),
        }
    }
}

impl From<&ApiError> for Unavailable {
    fn from(e: &ApiError) -> Self {
        match e.status() {
            Some(404) => Unavailable::NoLiveApi,
            Some(s @ (401 | 403)) => Unavailable::Refused(s),
            _ => Unavailable::Failed(e.to_string()),
        }
    }
}

/// The `configurationId`s the live list of `kind` holds (one GET). A kind the Live API does
/// not list is an empty set.
pub async fn configured_ids(
    client: &Client,
    slug: &str,
    kind: Kind,
) -> Result<BTreeSet<String>, Unavailable> {
    let Some(path) = list_path(slug, kind) else {
        return Ok(BTreeSet::new());
    };
    let items: Vec<LiveItem> = client.get(&path).await.map_err(|e| Unavailable::from(&e))?;
    Ok(items
        .into_iter()
        .filter_map(|i| i.configuration_id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_base_sits_beside_the_configuration_api() {
        assert_eq!(
            base_url("http://pbx:58080/communication_manager/api/resource/"),
            "http://pbx:58080/communication_manager/rest/live/"
        );
        assert_eq!(
            base_url("https://pbx:55050/communication_manager/rest/config"),
            "https://pbx:55050/communication_manager/rest/live/"
        );
    }

    #[test]
    fn only_listed_kinds_have_a_path_and_slugs_are_escaped() {
        assert_eq!(
            list_path("a b", Kind::ConferenceRoom).as_deref(),
            Some("coreServers/getByName/a%20b/conferences")
        );
        assert_eq!(list_path("default", Kind::ParkingLot), None);
        assert_eq!(list_path("default", Kind::Administrator), None);
    }
}
