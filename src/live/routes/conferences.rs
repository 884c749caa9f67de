//! Conference rooms (Live API §9): configured rooms (always listed) and running conferences
//! that are not configured (`userGenerated`), one room by live id or `getByName/{identifier}`,
//! and the call segments in a room.

use super::*;
use crate::live::join;
use axum::extract::State;
use axum::routing::get;

const ROOM: &str = "/coreServers/{cs}/conferences/{room}";

pub fn router() -> Router<Live> {
    Router::new()
        .route("/coreServers/{cs}/conferences", get(list))
        .route(ROOM, get(one))
        .route(&format!("{ROOM}/callSegments"), get(segments))
}

async fn list(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Config)?;
    ok_list(l.facts(false, |f| join::rooms_json(&cs, f))?)
}

/// The room `p["room"]`: its JSON and its conference name.
fn find(l: &Live, cs: &CsView, p: &HashMap<String, String>) -> Result<(Value, String), LiveError> {
    let seg = p.get("room").map(String::as_str).unwrap_or("");
    if let Some(r) = cs.room(seg) {
        return Ok((join::room_json(r), r.identifier.clone()));
    }
    let name = seg.strip_prefix(BY_NAME);
    l.facts(false, |f| {
        join::rooms_json(cs, f).into_iter().find(|v| match name {
            Some(n) => v["identifier"] == n,
            None => v["id"] == seg,
        })
    })?
    .map(|v| {
        let id = v["identifier"].as_str().unwrap_or_default().to_string();
        (v, id)
    })
    .ok_or_else(|| not_found("A conference room"))
}

async fn one(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Config)?;
    ok_json(find(&l, &cs, &p)?.0)
}

async fn segments(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let (_, name) = find(&l, &cs, &p)?;
    ok_list(l.facts(true, |f| {
        let members = f.conferences.get(&name).map(|c| &c.members);
        join::segments(&cs, f)
            .into_iter()
            .filter(|c| members.is_some_and(|m| m.contains(&c.unique_id)))
            .map(|c| join::segment_json(&cs, f, c))
            .collect()
    })?)
}
