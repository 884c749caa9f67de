//! The join of a core server's configured objects ([`CsView`]) with a backend's [`Facts`]:
//! which channels are call segments and of which type, which queue members are agents of which
//! extension, which conferences run, and the JSON of every live object (exactly the fields of
//! the reference's Part I; an extra only under an `x_` name).

use super::facts::{device_of, device_state_name, Channel, Facts, Member};
use super::model::{CsView, Ext, Queue, Room, User};
use serde_json::{json, Value};

/// A channel is a call segment when it is a phone's leg: any non-Local channel, or the `;1`
/// half of a Local channel whose device is a configured extension's `peer` (the `;2` half runs
/// the phone's dialplan; FreePBX's `Local/<ext>@from-queue/n` legs are plumbing).
pub fn is_segment(cs: &CsView, ch: &Channel) -> bool {
    if !ch.is_local() {
        return true;
    }
    ch.name.ends_with(";1") && cs.ext_by_peer(device_of(&ch.name)).is_some()
}

/// The segments of `facts`, oldest first by unique id.
pub fn segments<'a>(cs: &'a CsView, facts: &'a Facts) -> Vec<&'a Channel> {
    let mut out: Vec<&Channel> = facts
        .channels
        .values()
        .filter(|c| is_segment(cs, c))
        .collect();
    out.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    out
}

/// The segments on extension `e` (its device is the extension's `peer` or alternative).
pub fn ext_segments<'a>(cs: &'a CsView, facts: &'a Facts, e: &Ext) -> Vec<&'a Channel> {
    segments(cs, facts)
        .into_iter()
        .filter(|c| {
            let d = device_of(&c.name);
            (!e.peer.is_empty() && d == e.peer) || (!e.alt.is_empty() && d == e.alt)
        })
        .collect()
}

/// A call segment (Live API §8), with the related segments under a non-iSymphony name.
pub fn segment_json(cs: &CsView, facts: &Facts, ch: &Channel) -> Value {
    let internal = cs.ext_by_device(device_of(&ch.name)).is_some();
    let related: Vec<String> = facts
        .channels
        .values()
        .filter(|o| o.unique_id != ch.unique_id && is_segment(cs, o))
        .filter(|o| {
            (ch.bridge.is_some() && o.bridge == ch.bridge)
                || o.dialled_by.as_deref() == Some(ch.unique_id.as_str())
                || ch.dialled_by.as_deref() == Some(o.unique_id.as_str())
        })
        .map(|o| o.id.to_string())
        .collect();
    json!({
        "id": ch.id.to_string(),
        "type": if internal { "INTERNAL" } else { "EXTERNAL" },
        "callerId": {
            "id": ch.caller_id_id.to_string(),
            "name": ch.caller_id_name,
            "number": ch.caller_id_num,
        },
        "did": ch.did,
        "onHold": ch.on_hold,
        "recording": ch.recording,
        "incoming": ch.dialled_by.is_some() || ch.state == 5,
        "x_relatedCallSegmentIds": related,
    })
}

/// Whether a queue member is shown: with `licensed_full_users`, only agents of an extension
/// bound to a full user (§1.5).
pub fn agent_visible(cs: &CsView, m: &Member) -> bool {
    !cs.full_users_only
        || cs
            .ext_by_interface(&m.interface)
            .is_some_and(|e| cs.licensed(e))
}

/// The agents of queue `q`.
pub fn queue_agents<'a>(cs: &'a CsView, facts: &'a Facts, q: &Queue) -> Vec<&'a Member> {
    facts
        .members
        .values()
        .filter(|m| m.queue == q.identifier && agent_visible(cs, m))
        .collect()
}

/// The agents extension `e` is, across the visible queues.
pub fn ext_agents<'a>(cs: &'a CsView, facts: &'a Facts, e: &Ext) -> Vec<&'a Member> {
    let location = e.location();
    facts
        .members
        .values()
        .filter(|m| m.interface == location && cs.queues().any(|q| q.identifier == m.queue))
        .collect()
}

/// The agent `id` of queue `q`.
pub fn agent<'a>(cs: &'a CsView, facts: &'a Facts, q: &Queue, id: &str) -> Option<&'a Member> {
    queue_agents(cs, facts, q)
        .into_iter()
        .find(|m| m.id.to_string() == id)
}

/// An agent (Live API §4).
pub fn agent_json(m: &Member) -> Value {
    json!({
        "id": m.id.to_string(),
        "paused": m.paused,
        "state": device_state_name(m.status),
        "name": m.name,
        "dynamic": m.dynamic,
    })
}

/// PROVISIONAL (iSymphony's Statistics page was never found; README "Live API"): the
/// per-member values Asterisk keeps. Times are Unix milliseconds (0: never).
pub fn statistics_json(m: &Member) -> Value {
    json!({
        "id": m.id.to_string(),
        "callsTaken": m.calls_taken,
        "lastCall": m.last_call * 1000,
        "lastPause": m.last_pause * 1000,
        "loginTime": m.login_time * 1000,
    })
}

pub fn extension_json(e: &Ext) -> Value {
    json!({
        "id": e.live_id.to_string(),
        "extensionNumber": e.number,
        "displayName": e.display_name,
        "configurationId": e.id,
        "permissionId": e.id,
    })
}

pub fn queue_json(q: &Queue) -> Value {
    json!({
        "id": q.live_id.to_string(),
        "displayName": q.display_name,
        "identifier": q.identifier,
        "configurationId": q.id,
        "permissionId": q.id,
    })
}

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.live_id.to_string(),
        "configurationId": u.id,
        "userName": u.username,
        "displayedName": u.display_name,
        "permissionId": u.id,
    })
}

/// A user's status (§7); `configurationId` is null: the store holds no predefined statuses.
pub fn status_json(u: &User) -> Value {
    json!({
        "id": u.status_id.to_string(),
        "configurationId": Value::Null,
        "name": u.status.name,
        "type": u.status.kind,
        "note": u.status.note,
        "returnTime": u.status.return_time,
        "userCreated": u.status.user_created,
    })
}

pub fn room_json(r: &Room) -> Value {
    json!({
        "id": r.live_id.to_string(),
        "configurationId": r.id,
        "displayName": r.name,
        "identifier": r.identifier,
        "dialString": r.dial,
        "userGenerated": false,
        "permissionId": r.id,
    })
}

/// Every conference room: the configured ones (always), then running ConfBridges that are not
/// configured (user generated; only while the link is up).
pub fn rooms_json(cs: &CsView, facts: &Facts) -> Vec<Value> {
    let mut out: Vec<Value> = cs.rooms.iter().map(room_json).collect();
    if facts.link.is_up() {
        for (name, c) in &facts.conferences {
            if cs.rooms.iter().all(|r| &r.identifier != name) {
                out.push(json!({
                    "id": c.id.to_string(),
                    "configurationId": Value::Null,
                    "displayName": name,
                    "identifier": name,
                    "dialString": name,
                    "userGenerated": true,
                    "permissionId": Value::Null,
                }));
            }
        }
    }
    out
}
