//! Readiness: after a pass that applied changes and at each full verify, which configured
//! objects the target does not serve live, counted per kind.
//!
//! A handful of GETs, never one per object: the core server, the four configured collections
//! the Live API mirrors (extensions, queues, users, conference rooms) and their four live lists.
//! Only objects the agent manages count (its own ids and its adoptions). An object is "not
//! live" when its configured id is absent from its kind's live list (an
//! extension bound to no full user, a disabled queue; see `api::live`). A target without a Live
//! API (404) or whose licence refuses it (401/403) is [`Readiness::Unknown`]; the [`Tracker`]
//! then warns once and skips every later check, so such a target costs nothing afterwards.

use crate::api::client::{ApiError, Client};
use crate::api::live::{self, Unavailable};
use crate::api::resource::{self, Resource};
use crate::api::types::*;
use crate::config::Config;
use crate::model::Kind;
use crate::reconcile::ownership::Ownership;
use crate::reconcile::source::Target;
use crate::reconcile::state::StateStore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Readiness {
    /// Per listed kind, the natural keys of configured objects the Live API does not list
    /// (every listed kind is present, with an empty list when all are live).
    Known {
        at: SystemTime,
        not_live: BTreeMap<Kind, Vec<String>>,
    },
    /// The Live API cannot tell (none, refused, or it failed this time).
    Unknown { at: SystemTime, reason: String },
}

impl Readiness {
    /// The count per kind (None: unknown).
    pub fn counts(&self) -> Option<BTreeMap<Kind, usize>> {
        match self {
            Readiness::Known { not_live, .. } => {
                Some(not_live.iter().map(|(k, v)| (*k, v.len())).collect())
            }
            Readiness::Unknown { .. } => None,
        }
    }
}

/// (configured id, natural key) of every object of a listed kind.
async fn configured(
    client: &Client,
    cs: &str,
    kind: Kind,
) -> Result<Vec<(Option<String>, String)>, ApiError> {
    fn get<T>(
        v: Vec<T>,
        f: impl Fn(T) -> (Option<String>, String),
    ) -> Vec<(Option<String>, String)> {
        v.into_iter().map(f).collect()
    }
    let path = |r: &Resource| r.list(cs);
    Ok(match kind {
        Kind::Extension => get(
            client
                .get::<Vec<Extension>>(path(&resource::EXTENSIONS))
                .await?,
            |x| (x.id, x.extension),
        ),
        Kind::Queue => get(
            client.get::<Vec<Queue>>(path(&resource::QUEUES)).await?,
            |x| (x.id, x.identifier),
        ),
        Kind::User => get(
            client.get::<Vec<User>>(path(&resource::USERS)).await?,
            |x| (x.id, x.username),
        ),
        Kind::ConferenceRoom => get(
            client
                .get::<Vec<ConferenceRoom>>(path(&resource::CONFERENCE_ROOMS))
                .await?,
            |x| (x.id, x.identifier),
        ),
        _ => Vec::new(),
    })
}

/// One check of `target` (its Configuration API client `config` and Live API client
/// `live_client`), counting only the objects `own` says the agent manages. Errors of the
/// Configuration API side are `Unknown` too: readiness never fails a pass.
pub async fn check(
    config: &Client,
    live_client: &Client,
    slug: &str,
    own: &Ownership,
) -> (Readiness, Option<Unavailable>) {
    let at = SystemTime::now();
    let unknown = |reason: String| Readiness::Unknown { at, reason };
    let core: Option<CoreServer> = match config
        .get_opt(crate::api::paths::core_server_by_slug(slug))
        .await
    {
        Ok(c) => c,
        Err(e) => return (unknown(e.to_string()), None),
    };
    let Some(cs) = core.and_then(|c| c.id) else {
        return (
            unknown(format!("core server {slug} is not configured")),
            None,
        );
    };
    let mut not_live = BTreeMap::new();
    for (kind, _) in live::LISTED {
        let ids = match live::configured_ids(live_client, slug, kind).await {
            Ok(ids) => ids,
            Err(u) => return (unknown(u.to_string()), Some(u)),
        };
        let objects = match configured(config, &cs, kind).await {
            Ok(o) => o,
            Err(e) => return (unknown(e.to_string()), None),
        };
        let mut keys: Vec<String> = objects
            .into_iter()
            .filter(|(id, key)| own.is_managed(kind, id.as_deref(), key))
            .filter(|(id, _)| {
                !id.as_deref()
                    .is_some_and(|id| ids.iter().any(|l| l.eq_ignore_ascii_case(id)))
            })
            .map(|(_, key)| key)
            .collect();
        keys.sort();
        not_live.insert(kind, keys);
    }
    (Readiness::Known { at, not_live }, None)
}

/// The Configuration API and Live API clients of a target, as a pass builds its own.
pub fn clients(
    cfg: &Config,
    target: &Target,
) -> Result<(Client, Client), crate::reconcile::ReconcileError> {
    let config = crate::reconcile::make_client(cfg, target)?;
    let mut lt = target.clone();
    lt.url = live::base_url(&target.url);
    Ok((config, crate::reconcile::make_client(cfg, &lt)?))
}

/// Which objects the agent manages on `target`: its own ids, and the adoptions its state
/// store records (read-only; an unreadable store leaves only the agent's own ids). Objects
/// listed only by cxpanel's `cxpanel_managed_items` are not counted here: readiness reads no
/// FreePBX table.
fn ownership(cfg: &Config, target: &Target) -> Ownership {
    let known = StateStore::load_read_only(cfg.state_dir(), &target.scope()).unwrap_or_default();
    Ownership::new(
        &target.core_server,
        cfg.sync.clean_unknown_items,
        known,
        &[],
    )
}

/// Remembers a lasting unavailability (no Live API, licence refusal) per target, so that it is
/// warned about once and never asked again until the target changes or the agent restarts.
#[derive(Debug, Default)]
pub struct Tracker {
    gone: Mutex<Option<(String, Readiness)>>,
}

impl Tracker {
    /// Check `target`, unless it is already known to have no usable Live API: then the
    /// remembered `Unknown` is returned without a request.
    pub async fn run(&self, cfg: &Config, target: &Target) -> Readiness {
        let scope = target.scope();
        if let Some((s, r)) = self.lock().as_ref() {
            if *s == scope {
                return r.clone();
            }
        }
        let (r, why) = match clients(cfg, target) {
            Ok((c, l)) => check(&c, &l, &target.core_server, &ownership(cfg, target)).await,
            Err(e) => (
                Readiness::Unknown {
                    at: SystemTime::now(),
                    reason: e.to_string(),
                },
                None,
            ),
        };
        if let Some(u) = why.filter(Unavailable::is_lasting) {
            tracing::warn!(
                "readiness unknown: {u}; not checked again until the target changes or the \
                 agent restarts"
            );
            *self.lock() = Some((scope, r.clone()));
        }
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, Readiness)>> {
        self.gone.lock().unwrap_or_else(|e| e.into_inner())
    }
}
