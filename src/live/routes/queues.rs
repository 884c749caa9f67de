//! Queues (Live API §3) and their agents (§4): the enabled queues, one queue, its waiting
//! callers, log in / log out an extension; agents, an agent's extension and (provisional)
//! statistics, and the agent actions logout, pause, unpause, penalty.

use super::*;
use crate::live::facts::Member;
use crate::live::join;
use crate::live::model::{Ext, Queue};
use crate::live::value::{AmiValue, Grammar};
use axum::extract::State;
use axum::routing::{get, post};

const Q: &str = "/coreServers/{cs}/queues/{q}";
const AGENT: &str = "/coreServers/{cs}/queues/{q}/agents/{agent}";

pub fn router() -> Router<Live> {
    Router::new()
        .route("/coreServers/{cs}/queues", get(list))
        .route(Q, get(one))
        .route(&format!("{Q}/callSegments"), get(segments))
        .route(&format!("{Q}/login"), post(login))
        .route(&format!("{Q}/logout"), post(logout))
        .route(&format!("{Q}/agents"), get(agents))
        .route(AGENT, get(agent))
        .route(&format!("{AGENT}/extension"), get(agent_extension))
        .route(&format!("{AGENT}/statistics"), get(agent_statistics))
        .route(&format!("{AGENT}/logout"), post(agent_logout))
        .route(&format!("{AGENT}/pause"), post(agent_pause))
        .route(&format!("{AGENT}/unpause"), post(agent_unpause))
        .route(&format!("{AGENT}/penalty"), post(agent_penalty))
}

fn find<'a>(cs: &'a CsView, p: &HashMap<String, String>) -> Result<&'a Queue, LiveError> {
    let seg = p.get("q").map(String::as_str).unwrap_or("");
    cs.queue(seg).ok_or_else(|| not_found("A queue"))
}

/// The agent `p["agent"]` of the queue `p["q"]` (a copy: facts change under us).
fn find_agent(l: &Live, cs: &CsView, p: &HashMap<String, String>) -> Result<Member, LiveError> {
    let q = find(cs, p)?;
    let id = p.get("agent").map(String::as_str).unwrap_or("");
    l.facts(true, |f| join::agent(cs, f, q, id).cloned())?
        .ok_or_else(|| not_found("An agent"))
}

async fn list(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Licensed)?;
    ok_list(cs.queues().map(join::queue_json).collect())
}

async fn one(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Licensed)?;
    ok_json(join::queue_json(find(&cs, &p)?))
}

async fn segments(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let q = find(&cs, &p)?;
    ok_list(l.facts(true, |f| {
        join::segments(&cs, f)
            .into_iter()
            .filter(|c| c.queue.as_deref() == Some(q.identifier.as_str()))
            .map(|c| join::segment_json(&cs, f, c))
            .collect()
    })?)
}

async fn agents(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let q = find(&cs, &p)?;
    ok_list(l.facts(true, |f| {
        join::queue_agents(&cs, f, q)
            .into_iter()
            .map(join::agent_json)
            .collect()
    })?)
}

async fn agent(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    ok_json(join::agent_json(&find_agent(&l, &cs, &p)?))
}

async fn agent_extension(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let m = find_agent(&l, &cs, &p)?;
    let e = cs
        .ext_by_interface(&m.interface)
        .filter(|e| cs.licensed(e))
        .ok_or_else(|| not_found("The agent's extension"))?;
    ok_json(join::extension_json(e))
}

async fn agent_statistics(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    ok_json(join::statistics_json(&find_agent(&l, &cs, &p)?))
}

/// The extension a login/logout body names: exactly one of `extensionId` (live id) and
/// `extensionNumber`; returns it and the field used.
fn body_extension<'a>(
    cs: &'a CsView,
    m: &Map<String, Value>,
) -> Result<(&'a Ext, &'static str), Invalid> {
    let id = opt_str(m, "extensionId")?;
    let number = opt_str(m, "extensionNumber")?;
    let (field, seg) = match (id, number) {
        (Some(_), Some(_)) => {
            return Err(Invalid::new(
                "extensionId",
                "give either extensionId or extensionNumber, not both",
            ))
        }
        (None, None) => {
            return Err(Invalid::new(
                "extensionId",
                "one of extensionId or extensionNumber is required",
            ))
        }
        (Some(id), None) => ("extensionId", id.to_string()),
        (None, Some(n)) => ("extensionNumber", format!("{BY_NAME}{n}")),
    };
    if seg.trim_start_matches(BY_NAME).trim().is_empty() {
        return Err(Invalid::new(field, "must not be blank"));
    }
    cs.ext(&seg)
        .map(|e| (e, field))
        .ok_or_else(|| Invalid::new(field, "no such extension"))
}

fn interface(field: &str, e: &Ext) -> Result<AmiValue, Invalid> {
    AmiValue::parse(field, &e.location(), Grammar::Device)
}

/// Log an extension into the queue as a dynamic member (FreePBX's `queues_member_login()`).
async fn login(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let q = find(&cs, &p)?;
    let m = body(&bytes)?;
    let (e, field) = body_extension(&cs, &m)?;
    let penalty = opt_int(&m, "penalty", 0, i64::from(i32::MAX))?.unwrap_or(e.agent_penalty.max(0));
    let paused = opt_bool(&m, "paused")?.unwrap_or(e.agent_paused);
    let iface = interface(field, e)?;
    let state_interface = if e.agent_interface.is_empty() {
        format!("hint:{}@ext-local", e.number)
    } else {
        e.agent_interface.clone()
    };
    let name = if e.agent_name.is_empty() {
        &e.display_name
    } else {
        &e.agent_name
    };
    let action = Action::QueueAdd {
        queue: AmiValue::parse("queue", &q.identifier, Grammar::Name)?,
        state_interface: AmiValue::parse(field, &state_interface, Grammar::Device)?,
        member_name: AmiValue::parse(field, &clean_text(name), Grammar::Text)?,
        penalty: u32::try_from(penalty).unwrap_or(0),
        paused,
        interface: iface,
        extension: Some(AmiValue::parse(field, &e.number, Grammar::Exten)?),
    };
    let key = (q.identifier.clone(), e.location());
    if l.facts(true, |f| f.members.contains_key(&key))? {
        return Err(Invalid::new(field, "this extension is already logged in to the queue").into());
    }
    l.execute(action).await
}

/// Log an extension out of the queue.
async fn logout(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let q = find(&cs, &p)?;
    let m = body(&bytes)?;
    let (e, field) = body_extension(&cs, &m)?;
    let key = (q.identifier.clone(), e.location());
    match l.facts(true, |f| f.members.get(&key).map(|m| m.dynamic))? {
        None => Err(Invalid::new(field, "this extension is not logged in to the queue").into()),
        Some(false) => {
            Err(Invalid::new(field, "a static queue member cannot be logged out").into())
        }
        Some(true) => {
            let action = Action::QueueRemove {
                queue: AmiValue::parse("queue", &q.identifier, Grammar::Name)?,
                interface: interface(field, e)?,
                extension: Some(AmiValue::parse(field, &e.number, Grammar::Exten)?),
            };
            l.execute(action).await
        }
    }
}

/// (queue, interface) of an addressed agent, checked for AMI.
fn member_values(m: &Member) -> Result<(AmiValue, AmiValue), Invalid> {
    Ok((
        AmiValue::parse("queue", &m.queue, Grammar::Name)?,
        AmiValue::parse("agent", &m.interface, Grammar::Device)?,
    ))
}

async fn agent_logout(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let m = find_agent(&l, &cs, &p)?;
    if !m.dynamic {
        return Err(Invalid::new("agent", "a static queue member cannot be logged out").into());
    }
    let (queue, interface) = member_values(&m)?;
    // The extension the member is (for FreePBX's queue lamps); none for a foreign member.
    let extension = cs
        .ext_by_interface(&m.interface)
        .and_then(|e| AmiValue::parse("agent", &e.number, Grammar::Exten).ok());
    l.execute(Action::QueueRemove {
        queue,
        interface,
        extension,
    })
    .await
}

async fn pause(l: &Live, p: &HashMap<String, String>, fixed: Option<bool>, bytes: &Bytes) -> Res {
    let cs = l.view(p, Need::Action)?;
    let m = body(bytes)?;
    let paused = match fixed {
        Some(v) => v,
        None => opt_bool(&m, "paused")?.unwrap_or(true),
    };
    let reason = opt_str(&m, "reason")?.unwrap_or("");
    let reason = AmiValue::parse("reason", reason, Grammar::Text)?;
    let member = find_agent(l, &cs, p)?;
    let (queue, interface) = member_values(&member)?;
    l.execute(Action::QueuePause {
        queue,
        interface,
        paused,
        reason,
    })
    .await
}

async fn agent_pause(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    pause(&l, &p, None, &bytes).await
}

async fn agent_unpause(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    pause(&l, &p, Some(false), &bytes).await
}

async fn agent_penalty(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let m = body(&bytes)?;
    let penalty = opt_int(&m, "penalty", 0, i64::from(i32::MAX))?
        .ok_or_else(|| Invalid::new("penalty", "is required"))?;
    let member = find_agent(&l, &cs, &p)?;
    let (queue, interface) = member_values(&member)?;
    l.execute(Action::QueuePenalty {
        queue,
        interface,
        penalty: u32::try_from(penalty).unwrap_or(0),
    })
    .await
}
