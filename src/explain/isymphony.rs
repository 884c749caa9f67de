//! The iSymphony half of an explanation: the object iSymphony holds (and the last pass that
//! wrote it, from the local state file: no request), its pending change and
//! whether the Live API lists it.
//!
//! It reads only what this one object needs: the core server, the object's collection (plus
//! the users, for an extension's managing user), the object's own sub-resources and one Live
//! API list; then it runs the pass's own [`diff`] on that partial view and keeps the
//! operations of this object, with the licence holds of the state store applied. Nothing is
//! written; the state store is read read-only.

use super::{HeldObject, Liveness, ObjectRef, Pending};
use crate::api::client::{ApiError, Client, RequestCounts};
use crate::api::live;
use crate::api::resource::{self, Resource};
use crate::api::types::*;
use crate::config::Config;
use crate::model::Kind;
use crate::reconcile::source::{self, SourceInput};
use crate::reconcile::state::writes::LastWrite;
use crate::reconcile::state::StateStore;
use crate::reconcile::{diff, observe, plan, sub_reads, Observed, Ownership, ReconcileError};
use serde::de::DeserializeOwned;

/// What the iSymphony side says.
pub(super) struct Side {
    pub target: String,
    pub held: Option<HeldObject>,
    pub pending: Vec<Pending>,
    pub holds: Vec<String>,
    pub live: Liveness,
    pub requests: RequestCounts,
    pub live_requests: RequestCounts,
    pub warnings: Vec<String>,
}

/// Read one collection; a failure is a warning (the object then reads as absent).
async fn list<T: DeserializeOwned>(
    client: &Client,
    res: &Resource,
    cs: &str,
    warnings: &mut Vec<String>,
) -> Vec<T> {
    match client.get::<Vec<T>>(res.list(cs)).await {
        Ok(v) => v,
        Err(e) => {
            warnings.push(format!("{e}: {}s unreadable", res.kind.label()));
            Vec::new()
        }
    }
}

/// The collection `obj` lives in (and the users, for an extension's binding).
async fn read_kind(client: &Client, cs: &str, kind: Kind, o: &mut Observed, w: &mut Vec<String>) {
    match kind {
        Kind::Extension => {
            o.extensions = list(client, &resource::EXTENSIONS, cs, w).await;
            o.users = list(client, &resource::USERS, cs, w).await;
        }
        Kind::User => o.users = list(client, &resource::USERS, cs, w).await,
        Kind::Queue => o.queues = list(client, &resource::QUEUES, cs, w).await,
        Kind::ConferenceRoom => {
            o.conference_rooms = list(client, &resource::CONFERENCE_ROOMS, cs, w).await
        }
        Kind::ParkingLot => o.parking_lots = list(client, &resource::PARKING_LOTS, cs, w).await,
        Kind::Administrator => {
            o.administrators = list(client, &resource::ADMINISTRATORS, cs, w).await
        }
        _ => {}
    }
}

/// The id iSymphony gives the object with `obj`'s natural key, if it holds one.
fn held_id(o: &Observed, obj: &ObjectRef) -> Option<Option<String>> {
    let k = obj.key.as_str();
    match obj.kind {
        Kind::Extension => o
            .extensions
            .iter()
            .find(|x| x.extension == k)
            .map(|x| x.id.clone()),
        Kind::User => o
            .users
            .iter()
            .find(|x| x.username == k)
            .map(|x| x.id.clone()),
        Kind::Queue => o
            .queues
            .iter()
            .find(|x| x.identifier == k)
            .map(|x| x.id.clone()),
        Kind::ConferenceRoom => o
            .conference_rooms
            .iter()
            .find(|x| x.identifier == k)
            .map(|x| x.id.clone()),
        Kind::ParkingLot => o
            .parking_lots
            .iter()
            .find(|x| x.identifier == k)
            .map(|x| x.id.clone()),
        Kind::Administrator => o
            .administrators
            .iter()
            .find(|x| x.user_name == k)
            .map(|x| x.id.clone()),
        _ => None,
    }
}

fn ownership(own: &Ownership, kind: Kind, id: Option<&str>, key: &str) -> String {
    let lower = id.map(str::to_ascii_lowercase).unwrap_or_default();
    if own.is_ours(kind, id, key) {
        "agent (the agent's own id)".into()
    } else if own.known.adopted.contains(&(kind, lower.clone())) {
        "adopted (recorded in the agent's state)".into()
    } else if own.module_items.contains(&(kind, lower)) {
        "cxpanel (cxpanel_managed_items)".into()
    } else if own.clean_unknown_items {
        "managed as an unknown item ([sync] clean_unknown_items)".into()
    } else {
        "not managed: the agent adopts it when FreePBX wants it, never deletes it".into()
    }
}

/// The last-write line: from the state's record, or why there is none.
fn last_written(w: Option<&LastWrite>) -> String {
    match w {
        Some(w) => w.sentence(),
        None => "not written by this agent: no write recorded in its state \
                 (not yet, or before the state kept a record)"
            .into(),
    }
}

/// Is `op` about `obj` (the object itself, its contact/e-mails/phones, its binding)?
fn is_about(op: &plan::Op, obj: &ObjectRef) -> bool {
    let sub = match obj.kind {
        Kind::User => matches!(op.kind, Kind::Contact | Kind::Email | Kind::Phone),
        Kind::Extension => op.kind == Kind::ManagingUser,
        _ => false,
    };
    (op.kind == obj.kind || sub) && op.key == obj.key
}

/// Map a failed core-server read as a pass does.
fn core_error(e: ApiError) -> ReconcileError {
    if e.is_unreachable() {
        ReconcileError::IsymphonyUnreachable(e)
    } else {
        ReconcileError::IsymphonyRefused(e)
    }
}

/// Gather the iSymphony side of `obj`.
pub(super) async fn gather(
    cfg: &Config,
    input: SourceInput,
    obj: &ObjectRef,
) -> Result<Side, ReconcileError> {
    let target = source::resolve_target(cfg, &input.defaults);
    let mut desired = input.desired;
    desired.core_server.slug = target.core_server.clone();
    let known = StateStore::load_read_only(cfg.state_dir(), &target.scope())?;
    let own = Ownership::new(
        &target.core_server,
        cfg.sync.clean_unknown_items,
        known,
        &input.managed_items,
    );
    let client = reconcile_client(cfg, &target)?;
    let mut warnings = Vec::new();
    let mut o = Observed::default();
    let core: Option<CoreServer> = client
        .get_opt(crate::api::paths::core_server_by_slug(&target.core_server))
        .await
        .map_err(core_error)?;
    let cs = core.as_ref().and_then(|c| c.id.clone()).unwrap_or_default();
    o.core_server = core;
    if o.core_server.is_some() {
        read_kind(&client, &cs, obj.kind, &mut o, &mut warnings).await;
    }
    let found = held_id(&o, obj);
    let id = found.clone().flatten();
    if let Some(id) = &id {
        let mut reads = sub_reads(&desired, &o, &own, true);
        reads.contacts.retain(|x| x == id);
        reads.emails.retain(|x| x == id);
        reads.phones.retain(|x| x == id);
        reads.bindings.retain(|x| x == id);
        let gaps = observe::observe_subs(&client, &mut o, &reads, 4, None).await;
        warnings.extend(gaps.warnings);
    }
    let mut plan = diff(&desired, &o, &own);
    plan.ops.retain(|op| is_about(op, obj));
    let mut holds = crate::reconcile::refusals::Holds::new(&desired, &own.known.refusals);
    holds.hold(&mut plan, false);
    let held_lines: Vec<String> = own
        .known
        .refusals
        .values()
        .filter(|r| r.kind == obj.kind && r.key == obj.key)
        .map(|r| format!("{} refused for licensing: {}", r.action, r.message))
        .collect();
    let pending: Vec<Pending> = plan
        .ops
        .iter()
        .map(|op| Pending {
            line: op.describe(),
            action: format!("{:?}", op.action).to_lowercase(),
            kind: op.kind,
            changes: op.changes.clone(),
        })
        .collect();
    let last_write = StateStore::last_write(cfg.state_dir(), &target.scope(), obj.kind, &obj.key)?;
    let held = found.map(|id| HeldObject {
        ownership: ownership(&own, obj.kind, id.as_deref(), &obj.key),
        notes: notes(&o, obj, id.as_deref()),
        last_written: last_written(last_write.as_ref()),
        last_write,
        id,
    });
    let (live, live_requests) = liveness(cfg, &target, &o, obj, id.as_deref()).await?;
    let live = match live {
        Liveness::NotLive(why) if re_enables(&pending) => Liveness::NotLive(format!(
            "{why}; the pending update enables it again, so it is live after the next pass"
        )),
        l => l,
    };
    Ok(Side {
        target: format!(
            "{} (core server {})",
            crate::text::redact_url(&target.url),
            crate::text::escape_control(&target.core_server)
        ),
        held,
        pending,
        holds: held_lines,
        live,
        requests: client.counts(),
        live_requests,
        warnings,
    })
}

/// A pending change sets `enabled` (the agent owns the flag and turns it back on).
fn re_enables(pending: &[Pending]) -> bool {
    pending.iter().any(|p| {
        p.changes
            .iter()
            .any(|c| c.field == "enabled" && c.to == "true")
    })
}

fn reconcile_client(cfg: &Config, t: &source::Target) -> Result<Client, ReconcileError> {
    crate::reconcile::make_client(cfg, t)
}

/// The managing user of extension `id` as read (None: none, or not read).
fn binding<'a>(o: &'a Observed, id: Option<&str>) -> Option<&'a User> {
    o.managing_users.get(id?)?.as_ref()
}

/// Values of the held object that decide whether it is live.
fn notes(o: &Observed, obj: &ObjectRef, id: Option<&str>) -> Vec<String> {
    match obj.kind {
        Kind::Queue => o
            .queues
            .iter()
            .find(|q| q.identifier == obj.key)
            .map(|q| vec![format!("enabled = {}", q.enabled)])
            .unwrap_or_default(),
        Kind::User => o
            .users
            .iter()
            .find(|u| u.username == obj.key)
            .map(|u| vec![format!("full = {}", u.full)])
            .unwrap_or_default(),
        Kind::Extension => match binding(o, id) {
            Some(u) => vec![format!("managing user {} (full = {})", u.username, u.full)],
            None => vec!["no managing user".into()],
        },
        _ => Vec::new(),
    }
}

/// The likely reason a configured object is not listed live.
fn not_live_reason(o: &Observed, obj: &ObjectRef, id: Option<&str>) -> String {
    match obj.kind {
        Kind::Extension => match binding(o, id) {
            None => "it is bound to no user: the Live API lists only extensions bound to a \
                     licensed full user"
                .into(),
            Some(u) if !u.full => format!(
                "its managing user {} is a lite user (full = false): the Live API lists only \
                 extensions bound to a licensed full user; make the user full in FreePBX \
                 (cxpanel_users.full or the User Manager's cxpanel settings)",
                u.username
            ),
            Some(u) => format!(
                "it is bound to full user {}, yet not listed: the licence may allow fewer \
                 full users than are configured",
                u.username
            ),
        },
        Kind::Queue
            if o.queues
                .iter()
                .any(|q| q.identifier == obj.key && !q.enabled) =>
        {
            "the queue is disabled in iSymphony (enabled = false): the Live API omits \
             disabled queues"
                .into()
        }
        _ => "configured, but the Live API does not list it (iSymphony may still be \
              loading it after a change)"
            .into(),
    }
}

/// Whether the Live API lists the object (one GET of its kind's list), and what it cost.
async fn liveness(
    cfg: &Config,
    target: &source::Target,
    o: &Observed,
    obj: &ObjectRef,
    id: Option<&str>,
) -> Result<(Liveness, RequestCounts), ReconcileError> {
    let Some(id) = id else {
        return Ok((
            Liveness::NotApplicable("not configured in iSymphony".into()),
            RequestCounts::default(),
        ));
    };
    if live::collection(obj.kind).is_none() {
        return Ok((
            Liveness::NotApplicable(format!("the Live API has no {}s", obj.kind.label())),
            RequestCounts::default(),
        ));
    }
    let mut lt = target.clone();
    lt.url = live::base_url(&target.url);
    let client = reconcile_client(cfg, &lt)?;
    let live = match live::configured_ids(&client, &target.core_server, obj.kind).await {
        Ok(ids) if ids.iter().any(|x| x.eq_ignore_ascii_case(id)) => Liveness::Live,
        Ok(_) => Liveness::NotLive(not_live_reason(o, obj, Some(id))),
        Err(u) => Liveness::Unknown(u.to_string()),
    };
    Ok((live, client.counts()))
}
