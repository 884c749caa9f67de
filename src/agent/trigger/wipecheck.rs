//! Noticing a wiped or reinstalled iSymphony within seconds, not at the next FreePBX change or
//! the ten-minute verify.
//!
//! After each pass the check takes a baseline from the server the pass wrote to: the core
//! server's id, and for each top-level kind the size of its collection and one sample object.
//! Then, every `[sync] isymphony_check_interval` (3 s) while this agent leads and no pass runs,
//! it sends one GET for the core server (by slug) and one GET per sample. A missing core server,
//! a core server with another id (reinstalled and set up again), or a collection whose sample
//! is gone and that is now empty is a finding: the status says what was found and a full pass
//! starts at once. A finding triggers one pass; it triggers again only after a check found
//! everything as expected (so a server that keeps refusing the repair does not cause a pass
//! every few seconds: the scheduler's retry backoff applies). A sample deleted by a person
//! from a collection that is not empty is only replaced by another sample.

use crate::agent::leader::election::Role;
use crate::agent::run::scheduler::{SchedulerView, TriggerSender, TriggerSource};
use crate::agent::state::AgentState;
use crate::api::client::{ApiError, Client};
use crate::api::paths;
use crate::api::resource;
use crate::api::types::CoreServer;
use crate::config::Config;
use crate::model::Kind;
use crate::reconcile::source::Target;
use serde::Deserialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One top-level kind as the baseline saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sample {
    kind: Kind,
    list: String,
    /// Instance path of one object of the collection.
    item: String,
    size: usize,
}

/// What the server looked like after the last pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Baseline {
    core_id: String,
    samples: Vec<Sample>,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    CoreMissing { slug: String },
    CoreReplaced { slug: String },
    Emptied { kind: Kind, had: usize },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::CoreMissing { slug } => write!(
                f,
                "core server {slug} is missing (iSymphony wiped or reinstalled?)"
            ),
            Finding::CoreReplaced { slug } => write!(
                f,
                "core server {slug} was replaced by one with another id (iSymphony reinstalled?)"
            ),
            Finding::Emptied { kind, had } => write!(
                f,
                "{} dropped from {had} to nothing",
                kind.heading().to_lowercase()
            ),
        }
    }
}

/// Take the baseline; a missing core server is already a finding.
pub(crate) async fn baseline(
    client: &Client,
    slug: &str,
) -> Result<Result<Baseline, Finding>, ApiError> {
    let core: Option<CoreServer> = client.get_opt(paths::core_server_by_slug(slug)).await?;
    let Some(core_id) = core.and_then(|c| c.id) else {
        return Ok(Err(Finding::CoreMissing { slug: slug.into() }));
    };
    let mut samples = Vec::new();
    // Every collection the sync manages is watched.
    for res in &resource::ALL {
        let list = res.list(&core_id);
        // A collection this server cannot serve (licence, older version) is simply not watched.
        let Ok(summary) = list_summary(client, &list).await else {
            continue;
        };
        if let Some(id) = summary.first_id {
            samples.push(Sample {
                kind: res.kind,
                item: res.item(&core_id, &id),
                list,
                size: summary.size,
            });
        }
    }
    // The lists were read after the pass gave its memory back; without this their freed
    // pages stay with the idle agent.
    crate::agent::memory::release();
    Ok(Ok(Baseline { core_id, samples }))
}

/// One element of a collection as the check reads it: its id only. Decoding whole objects
/// (10,000 extensions with their fields) would allocate tens of MB per baseline.
#[derive(Debug, Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Value,
}

/// What the check keeps of a collection: its size and the first element's id.
#[derive(Debug, PartialEq, Eq)]
struct ListSummary {
    size: usize,
    first_id: Option<String>,
}

impl ListSummary {
    fn of(items: &[IdOnly]) -> ListSummary {
        ListSummary {
            size: items.len(),
            first_id: items.iter().find_map(|v| v.id.as_str()).map(str::to_owned),
        }
    }
}

async fn list_summary(client: &Client, list: &str) -> Result<ListSummary, ApiError> {
    let items: Vec<IdOnly> = client.get(list).await?;
    Ok(ListSummary::of(&items))
}

/// One check against `base`; `Ok(None)`: as expected. A sample gone from a collection that is
/// not empty is replaced in `base`.
pub(crate) async fn check(
    client: &Client,
    slug: &str,
    base: &mut Baseline,
) -> Result<Option<Finding>, ApiError> {
    let core: Option<CoreServer> = client.get_opt(paths::core_server_by_slug(slug)).await?;
    match core.and_then(|c| c.id) {
        None => return Ok(Some(Finding::CoreMissing { slug: slug.into() })),
        Some(id) if !id.eq_ignore_ascii_case(&base.core_id) => {
            return Ok(Some(Finding::CoreReplaced { slug: slug.into() }))
        }
        Some(_) => {}
    }
    let cs = base.core_id.clone();
    for s in &mut base.samples {
        if client.get_opt::<Value>(&s.item).await?.is_some() {
            continue;
        }
        let summary = list_summary(client, &s.list).await;
        crate::agent::memory::release();
        let summary = summary?;
        let Some(id) = summary.first_id else {
            return Ok(Some(Finding::Emptied {
                kind: s.kind,
                had: s.size,
            }));
        };
        if let Some(r) = resource::of(s.kind) {
            s.item = r.item(&cs, &id);
            s.size = summary.size;
        }
    }
    Ok(None)
}

/// The target of the last pass that reached the server, and a counter of such passes.
#[derive(Debug, Clone, Default)]
pub(crate) struct LastTarget {
    pub(crate) target: Option<Target>,
    pub(crate) generation: u64,
}

/// Shared between the pass (writer) and the check loop (reader).
pub(crate) type SharedTarget = Arc<Mutex<LastTarget>>;

pub(crate) fn record_target(shared: &SharedTarget, target: Option<Target>) {
    let mut g = match shared.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if target.is_some() {
        g.target = target;
    }
    g.generation += 1;
}

/// Everything the loop needs from the daemon.
pub(crate) struct CheckLoop {
    pub(crate) cfg: watch::Receiver<Arc<Config>>,
    pub(crate) role: watch::Receiver<Role>,
    pub(crate) view: Arc<Mutex<SchedulerView>>,
    pub(crate) state: Arc<AgentState>,
    pub(crate) triggers: TriggerSender,
    pub(crate) last: SharedTarget,
    pub(crate) stop: CancellationToken,
}

impl CheckLoop {
    fn idle_leader(&self) -> bool {
        let running = match self.view.lock() {
            Ok(v) => v.running,
            Err(p) => p.into_inner().running,
        };
        *self.role.borrow() == Role::Leader && !running
    }

    fn last(&self) -> LastTarget {
        match self.last.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Run until stopped.
    pub(crate) async fn run(self) {
        let mut client: Option<(String, Client)> = None;
        let mut base: Option<(u64, Baseline)> = None;
        let mut reported = false;
        loop {
            let cfg = self.cfg.borrow().clone();
            let every = cfg.sync.isymphony_check_interval;
            let wait = if every.is_zero() {
                Duration::from_secs(3600)
            } else {
                every
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.cancelled() => return,
            }
            if every.is_zero() || !self.idle_leader() {
                continue;
            }
            let last = self.last();
            let Some(target) = last.target else { continue };
            let key = format!("{}\0{}", target.url, target.username);
            if client.as_ref().map(|c| &c.0) != Some(&key) {
                client = crate::reconcile::make_client(&cfg, &target)
                    .ok()
                    .map(|c| (key, c));
                base = None;
            }
            let Some((_, c)) = &client else { continue };
            let slug = &target.core_server;
            let found = match &mut base {
                Some((generation, b)) if *generation == last.generation => check(c, slug, b).await,
                _ => match baseline(c, slug).await {
                    Ok(Ok(b)) => {
                        base = Some((last.generation, b));
                        Ok(None)
                    }
                    Ok(Err(f)) => Ok(Some(f)),
                    Err(e) => Err(e),
                },
            };
            match found {
                Ok(None) => {
                    reported = false;
                    self.state.isymphony_checked(None, false);
                }
                Ok(Some(f)) => {
                    if !reported {
                        tracing::warn!("iSymphony check: {f}; starting a full pass");
                    }
                    self.state.isymphony_checked(Some(f.to_string()), !reported);
                    if !reported {
                        self.triggers.trigger(TriggerSource::IsymphonyCheck, true);
                    }
                    reported = true;
                    base = None;
                }
                // Not answering is the passes' business (reported as unreachable there).
                Err(e) => tracing::debug!(error = %e, "iSymphony check failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_say_what_was_found() {
        let f = Finding::Emptied {
            kind: Kind::Extension,
            had: 12,
        };
        assert_eq!(f.to_string(), "extensions dropped from 12 to nothing");
        let f = Finding::CoreMissing {
            slug: "default".into(),
        };
        assert!(f.to_string().contains("core server default is missing"));
    }

    /// The check keeps a size and one id of a collection, not its objects: decoding reads only
    /// `id` (other fields are skipped) and, as before, passes over elements without a string id.
    #[test]
    fn a_list_is_summarised_by_its_size_and_first_id() {
        let body = serde_json::json!([
            {"extension": "100", "display_name": "no id", "phones": [{"number": "1"}]},
            {"id": 7, "extension": "101"},
            {"id": "ab-12", "extension": "102", "voicemail": {"box": "102"}},
            {"id": "cd-34", "extension": "103"},
        ]);
        let items: Vec<IdOnly> = serde_json::from_value(body).unwrap();
        assert_eq!(
            ListSummary::of(&items),
            ListSummary {
                size: 4,
                first_id: Some("ab-12".into())
            }
        );
        let none: Vec<IdOnly> = serde_json::from_str(r#"[{"extension":"100"}]"#).unwrap();
        assert_eq!(
            ListSummary::of(&none),
            ListSummary {
                size: 1,
                first_id: None
            }
        );
        assert_eq!(ListSummary::of(&[]).size, 0);
    }
}
