//! Extensions (Live API §2): the list, one extension, its agents and call segments, and the
//! actions originate and DND (body form and the `enable`/`disable` aliases).

use super::*;
use crate::live::join;
use crate::live::model::Ext;
use crate::live::value::{AmiValue, Grammar};
use axum::extract::State;
use axum::routing::{get, post};

const EXT: &str = "/coreServers/{cs}/extensions/{ext}";

pub fn router() -> Router<Live> {
    Router::new()
        .route("/coreServers/{cs}/extensions", get(list))
        .route(EXT, get(one))
        .route(&format!("{EXT}/agents"), get(agents))
        .route(&format!("{EXT}/callSegments"), get(segments))
        .route(&format!("{EXT}/originate"), post(originate))
        .route(&format!("{EXT}/dnd"), post(dnd))
        .route(&format!("{EXT}/dnd/enable"), post(dnd_enable))
        .route(&format!("{EXT}/dnd/disable"), post(dnd_disable))
}

/// The extension `p["ext"]` of `cs` (404 when unknown or not licensed).
pub fn find<'a>(cs: &'a CsView, p: &HashMap<String, String>) -> Result<&'a Ext, LiveError> {
    let seg = p.get("ext").map(String::as_str).unwrap_or("");
    cs.ext(seg).ok_or_else(|| not_found("An extension"))
}

async fn list(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Licensed)?;
    ok_list(cs.extensions().map(join::extension_json).collect())
}

async fn one(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::Licensed)?;
    ok_json(join::extension_json(find(&cs, &p)?))
}

async fn agents(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let e = find(&cs, &p)?;
    ok_list(l.facts(true, |f| {
        join::ext_agents(&cs, f, e)
            .into_iter()
            .map(join::agent_json)
            .collect()
    })?)
}

async fn segments(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let e = find(&cs, &p)?;
    ok_list(l.facts(true, |f| {
        join::ext_segments(&cs, f, e)
            .into_iter()
            .map(|c| join::segment_json(&cs, f, c))
            .collect()
    })?)
}

/// Default originate timeout when the extension has no override (milliseconds).
const ORIGINATE_TIMEOUT_MS: u64 = 30_000;

/// Ring the extension and, when answered, dial `destination` (reference II.4).
async fn originate(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let e = find(&cs, &p)?;
    let m = body(&bytes)?;
    let dest = req_str(&m, "destination")?;
    let exten = AmiValue::parse("destination", dest, Grammar::Exten)?;
    let auto_answer = opt_bool(&m, "autoAnswer")?.unwrap_or(e.auto_answer);
    l.allow_destination(&cs, dest)?;
    let device = if e.alt.is_empty() { &e.peer } else { &e.alt };
    let channel = AmiValue::parse("peer", device, Grammar::Device).map_err(|_| {
        Error::Unprocessable(format!(
            "Extension {} has no usable device to originate from (its peer or \
             altOriginationMethod).",
            e.number
        ))
    })?;
    let context = if e.originating_context.is_empty() {
        &cs.originating_context
    } else {
        &e.originating_context
    };
    let config = |f: &str, v: &str, g: Grammar| {
        AmiValue::parse(f, v, g).map_err(|i| {
            LiveError::from(Error::Unprocessable(format!(
                "The configuration of extension {} cannot be sent to Asterisk: {i}.",
                e.number
            )))
        })
    };
    let action = Action::Originate {
        channel,
        context: config("originatingContext", context, Grammar::Context)?,
        exten,
        caller_name: config("displayName", &clean_text(&e.display_name), Grammar::Text)?,
        caller_number: config("extension", &e.number, Grammar::Exten)?,
        timeout_ms: u64::try_from(e.originate_timeout)
            .ok()
            .filter(|t| *t > 0)
            .unwrap_or(ORIGINATE_TIMEOUT_MS),
        auto_answer,
    };
    l.facts(true, |_| ())?;
    l.execute(action).await
}

async fn set_dnd(
    l: &Live,
    p: &HashMap<String, String>,
    enabled: Option<bool>,
    bytes: &Bytes,
) -> Res {
    let cs = l.view(p, Need::Action)?;
    let e = find(&cs, p)?;
    let enabled = match enabled {
        Some(v) => v,
        None => {
            let m = body(bytes)?;
            opt_bool(&m, "enabled")?.ok_or_else(|| Invalid::new("enabled", "is required"))?
        }
    };
    let extension = AmiValue::parse("extension", &e.number, Grammar::Exten)?;
    l.facts(true, |_| ())?;
    l.execute(Action::Dnd { extension, enabled }).await
}

async fn dnd(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    set_dnd(&l, &p, None, &bytes).await
}

async fn dnd_enable(State(l): State<Live>, p: Params) -> Res {
    set_dnd(&l, &p, Some(true), &Bytes::new()).await
}

async fn dnd_disable(State(l): State<Live>, p: Params) -> Res {
    set_dnd(&l, &p, Some(false), &Bytes::new()).await
}
