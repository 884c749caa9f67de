//! The Live API's routes (`communication_manager/rest/live/`), one file per resource family,
//! each exporting a router; plus what they share: the state, the error type (the
//! Configuration API's body, plus 503 while the PBX link is down), the path canonicalisation
//! (`getByName/{name}` and the singular spellings), the guards (licence, `[live] actions`,
//! link) and the body readers that answer 422 naming the field.

pub mod conferences;
pub mod extensions;
pub mod queues;
pub mod segments;
pub mod users;

use super::action::{Action, ActionError};
use super::backend::Backend;
use super::facts::{Facts, Link};
use super::model::{CsView, Model, BY_NAME};
use super::value::Invalid;
use super::{LiveActions, LiveConfig};
use crate::api::types::ErrorBody;
use crate::server::app::App;
use crate::server::error::Error;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

/// Where the Live API is served (below the host root).
pub const LIVE_ROOT: &str = "/communication_manager/rest/live";

/// Shared state of the Live API's handlers.
pub struct LiveState {
    pub app: App,
    pub cfg: LiveConfig,
    pub backend: Arc<Backend>,
    pub model: Model,
}

pub type Live = Arc<LiveState>;

/// A handler's path parameters by name (`cs`, `ext`, `q`, `agent`, `user`, `seg`, `room`).
pub type Params = axum::extract::Path<HashMap<String, String>>;

/// The Live API router for the embedded endpoint (to nest at [`LIVE_ROOT`]) and its backend
/// (to shut down with the endpoint). The simulator learns the extensions' devices from `app`.
pub fn serve(app: App, live: super::Live) -> (Router, Arc<Backend>) {
    if let Backend::Simulated(h) = &live.backend {
        let a = app.clone();
        h.set_directory(Arc::new(move |n: &str| {
            a.store.read(|st| super::model::peer_of(st, n))
        }));
    }
    let backend = Arc::new(live.backend);
    let state = Arc::new(LiveState {
        app,
        cfg: live.cfg,
        backend: backend.clone(),
        model: Model::new(),
    });
    (router(state), backend)
}

/// The whole tree, relative to [`LIVE_ROOT`].
pub fn router(state: Live) -> Router {
    Router::new()
        .merge(extensions::router())
        .merge(queues::router())
        .merge(users::router())
        .merge(segments::router())
        .merge(conferences::router())
        .with_state(state)
}

/// Map the documented spellings onto the routed ones: `getByName/{name}` becomes one
/// [`BY_NAME`]-marked segment (so the two forms mix freely), `…/user/{u}` becomes
/// `…/users/{u}`, `…/agent/{a}` becomes `…/agents/{a}`. `rest` is below [`LIVE_ROOT`], its
/// segments percent-encoded; the answer is too.
pub fn canonical(rest: &str) -> String {
    let raw: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut segs: Vec<String> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == "getByName" && i + 1 < raw.len() && !segs.is_empty() {
            segs.push(format!("%{:02X}{}", BY_NAME as u32, raw[i + 1]));
            i += 2;
            continue;
        }
        segs.push(raw[i].to_string());
        i += 1;
    }
    if segs.get(2).is_some_and(|s| s == "user") {
        segs[2] = "users".into();
    }
    if segs.get(2).is_some_and(|s| s == "queues") && segs.get(4).is_some_and(|s| s == "agent") {
        segs[4] = "agents".into();
    }
    let mut out = String::new();
    for s in segs {
        out.push('/');
        out.push_str(&s);
    }
    out
}

/// A Live API error: the Configuration API's ([`Error`], same JSON body), or 503 while the
/// connection to the PBX is down (with `Retry-After`).
#[derive(Debug)]
pub enum LiveError {
    Api(Error),
    Down { since: SystemTime, reason: String },
}

impl From<Error> for LiveError {
    fn from(e: Error) -> Self {
        LiveError::Api(e)
    }
}

impl From<Invalid> for LiveError {
    fn from(e: Invalid) -> Self {
        LiveError::Api(Error::Unprocessable(format!(
            "Invalid value for field '{}': {}.",
            e.field, e.message
        )))
    }
}

impl From<ActionError> for LiveError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(m) => Error::NotFound(m).into(),
            ActionError::Invalid { field, message } => Invalid { field, message }.into(),
            ActionError::Unavailable { since, reason } => LiveError::Down { since, reason },
            ActionError::Failed(m) => Error::Failed(m).into(),
        }
    }
}

/// Seconds a client should wait before asking again while the PBX link is down.
const RETRY_AFTER_SECS: &str = "5";

impl IntoResponse for LiveError {
    fn into_response(self) -> Response {
        match self {
            LiveError::Api(e) => e.into_response(),
            LiveError::Down { since, reason } => {
                let body = ErrorBody {
                    status: 503,
                    message: format!(
                        "Live state is unavailable: the connection to Asterisk (AMI) is down \
                         since {}: {reason}",
                        humantime::format_rfc3339_seconds(since)
                    ),
                };
                let json = serde_json::to_vec(&body).unwrap_or_default();
                let mut resp = (StatusCode::SERVICE_UNAVAILABLE, json).into_response();
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
                resp
            }
        }
    }
}

pub type Res = Result<Response, LiveError>;

/// What a resource needs before it is read or acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Configuration-derived, not licence-restricted (users, conference rooms).
    Config,
    /// Licence-restricted, configuration-derived (extensions, queues, status).
    Licensed,
    /// Licence-restricted and needs the PBX's state (agents, call segments).
    LiveState,
    /// An action (licence, `[live] actions`, and the PBX link).
    Action,
}

impl LiveState {
    /// The core server `p["cs"]` (404 when unknown), after the licence and action guards.
    pub fn view(&self, p: &HashMap<String, String>, need: Need) -> Result<Arc<CsView>, LiveError> {
        let seg = p.get("cs").map(String::as_str).unwrap_or("");
        let full = self.app.licensed_full_users.is_some();
        let view = self
            .app
            .store
            .read(|st| self.model.load(st, seg, full))
            .ok_or_else(|| Error::not_found(crate::server::resources::NO_CORE_SERVER))?;
        if need != Need::Config && !self.cfg.licensed {
            return Err(Error::Forbidden(
                "This resource is restricted by licensing ([live] licensed = false).".into(),
            )
            .into());
        }
        if need == Need::Action && self.cfg.actions == LiveActions::Off {
            return Err(Error::Forbidden(
                "Live API actions are disabled ([live] actions = \"off\").".into(),
            )
            .into());
        }
        Ok(view)
    }

    /// Read the backend's facts; 503 when the link is down and `live` state is needed.
    pub fn facts<T>(&self, live: bool, f: impl FnOnce(&Facts) -> T) -> Result<T, LiveError> {
        self.backend.shared().read(|facts| match &facts.link {
            Link::Down { since, reason } if live => Err(LiveError::Down {
                since: *since,
                reason: reason.clone(),
            }),
            _ => Ok(f(facts)),
        })
    }

    /// Perform `action` on the backend.
    pub async fn execute(&self, action: Action) -> Res {
        self.backend.execute(action).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// With `[live] actions = "internal"`, `dest` must be on this PBX.
    pub fn allow_destination(&self, cs: &CsView, dest: &str) -> Result<(), LiveError> {
        if self.cfg.actions == LiveActions::Internal && !cs.is_internal(dest) {
            return Err(Error::Forbidden(format!(
                "destination '{dest}' is not a configured extension, queue, conference room \
                 or parking space, and [live] actions = \"internal\" allows no other."
            ))
            .into());
        }
        Ok(())
    }
}

pub fn not_found(what: &str) -> LiveError {
    Error::not_found(format!("{what} with the given id or name does not exist.")).into()
}

pub fn ok_json(v: Value) -> Res {
    Ok(crate::server::resources::json_value(&v))
}

pub fn ok_list(v: Vec<Value>) -> Res {
    ok_json(Value::Array(v))
}

/// An action's body: absent or blank is `{}`; malformed JSON is the Configuration API's 412;
/// anything but an object is 422.
pub fn body(bytes: &Bytes) -> Result<Map<String, Value>, LiveError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match crate::server::app::decode_json_body(bytes)? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::Unprocessable("The request body must be a JSON object.".into()).into()),
    }
}

/// A required, non-blank string field.
pub fn req_str<'a>(m: &'a Map<String, Value>, f: &str) -> Result<&'a str, Invalid> {
    match m.get(f) {
        None | Some(Value::Null) => Err(Invalid::new(f, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(Invalid::new(f, "must not be blank")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Invalid::new(f, "must be a string")),
    }
}

/// An optional string field (null = absent).
pub fn opt_str<'a>(m: &'a Map<String, Value>, f: &str) -> Result<Option<&'a str>, Invalid> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new(f, "must be a string")),
    }
}

/// An optional boolean field.
pub fn opt_bool(m: &Map<String, Value>, f: &str) -> Result<Option<bool>, Invalid> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Invalid::new(f, "must be a boolean")),
    }
}

/// An optional integer field within `min..=max`.
pub fn opt_int(
    m: &Map<String, Value>,
    f: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, Invalid> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(Invalid::new(
                f,
                format!("must be an integer from {min} to {max}"),
            )),
        },
        Some(_) => Err(Invalid::new(f, "must be an integer")),
    }
}

/// Config-derived free text made safe for [`super::value::Grammar::Text`]: characters the
/// grammar refuses dropped, at most 80 characters.
pub fn clean_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !"\"<>,;|".contains(*c))
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_by_name_and_spellings_are_canonical() {
        assert_eq!(
            canonical("/coreServers/getByName/default/extensions/getByName/4224/"),
            "/coreServers/%01default/extensions/%014224"
        );
        assert_eq!(
            canonical("/coreServers/c1/user/getByName/bob/extensions"),
            "/coreServers/c1/users/%01bob/extensions"
        );
        assert_eq!(
            canonical("/coreServers/c1/queues/q/agent/a/extension"),
            "/coreServers/c1/queues/q/agents/a/extension"
        );
    }
}
