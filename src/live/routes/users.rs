//! Users (Live API §5), their logins (§6: the embedded server has no panel clients, so `[]`),
//! their status (§7, kept by the model, published to the PBX as the presence of the user's
//! extensions) and their extensions (§2, also under the singular `user/…/extensions`, mapped by
//! [`super::canonical`]).

use super::*;
use crate::live::join;
use crate::live::model::{Status, User};
use crate::live::value::{AmiValue, Grammar};
use axum::extract::State;
use axum::routing::{get, post};

const USER: &str = "/coreServers/{cs}/users/{user}";

pub fn router() -> Router<Live> {
    Router::new()
        .route("/coreServers/{cs}/users", get(list))
        .route(USER, get(one))
        .route(&format!("{USER}/logins"), get(logins))
        .route(&format!("{USER}/status"), get(status))
        .route(&format!("{USER}/status/set"), post(set_status))
        .route(&format!("{USER}/extensions"), get(extensions))
}

fn find<'a>(cs: &'a CsView, p: &HashMap<String, String>) -> Result<&'a User, LiveError> {
    let seg = p.get("user").map(String::as_str).unwrap_or("");
    cs.user(seg).ok_or_else(|| not_found("A user"))
}

/// With `licensed_full_users`, a lite user's status is not licensed (the Event API only sends
/// full users' statuses, the Live API licence rules).
fn licensed_status(cs: &CsView, u: &User) -> Result<(), LiveError> {
    if cs.full_users_only && !u.full {
        return Err(Error::Forbidden(
            "The status of a user that is not a full (licensed) user is restricted by licensing."
                .into(),
        )
        .into());
    }
    Ok(())
}

async fn list(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Config)?;
    ok_list(cs.users.iter().map(join::user_json).collect())
}

async fn one(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Config)?;
    ok_json(join::user_json(find(&cs, &p)?))
}

async fn logins(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Config)?;
    find(&cs, &p)?;
    ok_list(Vec::new())
}

async fn status(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Licensed)?;
    let u = find(&cs, &p)?;
    licensed_status(&cs, u)?;
    ok_json(join::status_json(u))
}

async fn extensions(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Licensed)?;
    let u = find(&cs, &p)?;
    ok_list(cs.user_extensions(u).map(join::extension_json).collect())
}

/// The icon types a status may have (§7).
const TYPES: [&str; 11] = [
    "available",
    "unavailable",
    "away",
    "xa",
    "dnd",
    "chat",
    "altblue",
    "altgreen",
    "altpink",
    "altpurple",
    "altred",
];

/// Asterisk's presence state for a status type (the `alt*` colours are `available`).
fn presence(kind: &str) -> &'static str {
    match kind {
        "unavailable" => "unavailable",
        "away" => "away",
        "xa" => "xa",
        "dnd" => "dnd",
        "chat" => "chat",
        _ => "available",
    }
}

/// The status a `set` body asks for: `name` and `type` required, `note` and `returnTime`
/// optional.
fn parse_status(m: &Map<String, Value>) -> Result<(Status, AmiValue), Invalid> {
    let name = req_str(m, "name")?;
    AmiValue::parse("name", name, Grammar::Text)?;
    let kind = req_str(m, "type")?;
    if !TYPES.contains(&kind) {
        return Err(Invalid::new(
            "type",
            format!("must be one of {}", TYPES.join(", ")),
        ));
    }
    let note = opt_str(m, "note")?.unwrap_or("");
    let note_value = AmiValue::parse("note", note, Grammar::Text)?;
    let return_time = opt_int(m, "returnTime", -1, i64::MAX)?.unwrap_or(-1);
    Ok((
        Status {
            name: name.to_string(),
            kind: kind.to_string(),
            note: note.to_string(),
            return_time,
            user_created: true,
        },
        note_value,
    ))
}

async fn set_status(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let u = find(&cs, &p)?;
    licensed_status(&cs, u)?;
    let (status, note) = parse_status(&body(&bytes)?)?;
    let extensions = cs
        .user_extensions(u)
        .map(|e| AmiValue::parse("extension", &e.number, Grammar::Exten))
        .collect::<Result<Vec<_>, _>>()?;
    l.facts(true, |_| ())?;
    let state = presence(&status.kind);
    if !extensions.is_empty() {
        l.backend
            .execute(Action::Presence {
                extensions,
                state,
                note,
            })
            .await?;
    }
    if !l
        .app
        .store
        .read(|st| l.model.set_status(st, &cs.id, &u.id, status))
    {
        return Err(not_found("A user"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
