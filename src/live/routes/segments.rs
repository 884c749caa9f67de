//! Call segments (Live API §8): all segments of a core server, one segment, and the transfer
//! action (`Redirect` into the extension's or the core server's redirecting context).

use super::*;
use crate::live::join;
use crate::live::value::{AmiValue, Grammar};
use axum::extract::State;
use axum::routing::{get, post};

const SEG: &str = "/coreServers/{cs}/callSegments/{seg}";

pub fn router() -> Router<Live> {
    Router::new()
        .route("/coreServers/{cs}/callSegments", get(list))
        .route(SEG, get(one))
        .route(&format!("{SEG}/transfer"), post(transfer))
}

async fn list(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    ok_list(l.facts(true, |f| {
        join::segments(&cs, f)
            .into_iter()
            .map(|c| join::segment_json(&cs, f, c))
            .collect()
    })?)
}

fn seg_id(p: &HashMap<String, String>) -> &str {
    p.get("seg").map(String::as_str).unwrap_or("")
}

async fn one(State(l): State<Live>, p: Params) -> Res {
    let cs = l.view(&p, Need::LiveState)?;
    let id = seg_id(&p);
    l.facts(true, |f| {
        join::segments(&cs, f)
            .into_iter()
            .find(|c| c.id.to_string() == id)
            .map(|c| join::segment_json(&cs, f, c))
    })?
    .map_or_else(|| Err(not_found("A call segment")), ok_json)
}

/// Transfer a segment to `destination`: `Redirect` its channel into the redirecting context of
/// the extension it is on (`redirectingContextOverride`) or of the core server.
async fn transfer(State(l): State<Live>, p: Params, bytes: Bytes) -> Res {
    let cs = l.view(&p, Need::Action)?;
    let m = body(&bytes)?;
    let dest = req_str(&m, "destination")?;
    let exten = AmiValue::parse("destination", dest, Grammar::Exten)?;
    l.allow_destination(&cs, dest)?;
    let id = seg_id(&p);
    let name = l
        .facts(true, |f| {
            join::segments(&cs, f)
                .into_iter()
                .find(|c| c.id.to_string() == id)
                .map(|c| c.name.clone())
        })?
        .ok_or_else(|| not_found("A call segment"))?;
    let ext = cs.ext_by_device(crate::live::facts::device_of(&name));
    let context = match ext {
        Some(e) if !e.redirecting_context.is_empty() => &e.redirecting_context,
        _ => &cs.redirecting_context,
    };
    let context =
        AmiValue::parse("redirectingContext", context, Grammar::Context).map_err(|i| {
            Error::Unprocessable(format!("The configured context cannot be sent: {i}."))
        })?;
    let channel = AmiValue::parse("callSegment", &name, Grammar::Channel)?;
    l.execute(Action::Redirect {
        channel,
        context,
        exten,
    })
    .await
}
