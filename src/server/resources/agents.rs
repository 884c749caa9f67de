//! Voicemail agents (R15) and recording agents (R17), which on a real server exist because
//! agents connect: the configured ones (`local-vm`, `local-rec` by default) are seeded at
//! start, addressable by identifier, id or `getByName/{identifier}`, and can only be edited.
//! Also a core server's voicemail agent identifiers (R16): bare JSON strings.

use super::*;
use crate::api::types::{RecordingAgent, VoicemailAgent};
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::{delete as delete_route, get};

const VM_SCOPE: &str = "voicemailAgents";
const REC_SCOPE: &str = "recordingAgents";

const VM: Family = Family {
    a: "A voicemail agent",
    key: Some(("identifier", "identifier")),
    required: &[],
};
const REC: Family = Family {
    a: "A recording agent",
    key: Some(("identifier", "identifier")),
    required: &[],
};

pub fn router() -> Router<App> {
    Router::new()
        .route("/asterisk/voicemailAgents", get(list_vm))
        .route("/asterisk/voicemailAgents/{id}", get(get_vm).put(put_vm))
        .route("/asterisk/recordingAgents", get(list_rec))
        .route("/asterisk/recordingAgents/{id}", get(get_rec).put(put_rec))
        .route(
            "/asterisk/{cs}/voicemailAgentIdentifiers",
            get(list_ids).post(bind_id),
        )
        .route(
            "/asterisk/{cs}/voicemailAgentIdentifiers/{id}",
            delete_route(unbind_id).get(get_id),
        )
}

fn agent_id(kind: &str, identifier: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("isymphony-sync/{kind}/{identifier}").as_bytes(),
    )
    .to_string()
}

/// Create the configured agents that are not stored yet.
pub async fn seed(app: &App, voicemail: &[String], recording: &[String]) -> Result<(), Error> {
    app.store
        .write(|tx| {
            for ident in voicemail {
                if tx.id_by_key(VM_SCOPE, ident).is_none() {
                    let id = agent_id("voicemail", ident);
                    let a = VoicemailAgent {
                        id: Some(id.clone()),
                        identifier: ident.clone(),
                        root_path: "/var/spool/asterisk/voicemail".into(),
                        resource_host: "localhost".into(),
                        resource_extension: "wav".into(),
                        extra: Default::default(),
                    };
                    let v = serde_json::to_value(a).expect("a derived Serialize with string keys always serialises");
                    tx.put(VM_SCOPE, &id, Some(ident.clone()), v);
                }
            }
            for ident in recording {
                if tx.id_by_key(REC_SCOPE, ident).is_none() {
                    let id = agent_id("recording", ident);
                    let a = RecordingAgent {
                        id: Some(id.clone()),
                        identifier: ident.clone(),
                        root_path: "/var/spool/asterisk/monitor".into(),
                        resource_host: "localhost".into(),
                        resource_extension: "wav".into(),
                        file_name_mask: "${Tag(exten)}-${DstExtension}-${SrcExtension}-${Date(yyyyMMdd)}-${Time(HHmmss)}-${CDRUniqueId}".into(),
                        extra: Default::default(),
                    };
                    let v = serde_json::to_value(a).expect("a derived Serialize with string keys always serialises");
                    tx.put(REC_SCOPE, &id, Some(ident.clone()), v);
                }
            }
            Ok(())
        })
        .await
}

/// An agent path segment is an identifier or an id.
fn resolve(st: &crate::server::store::State, scope: &str, seg: &str) -> Option<String> {
    st.id_by_key(scope, seg)
        .map(str::to_string)
        .or_else(|| st.contains(scope, seg).then(|| seg.to_string()))
}

fn get_agent(app: &App, scope: &str, seg: &str, fam: &Family) -> Result<Response, Error> {
    app.store.read(|st| {
        resolve(st, scope, seg)
            .and_then(|id| st.get(scope, &id))
            .map(|it| json_bytes(it.bytes.clone()))
            .ok_or_else(|| fam.missing())
    })
}

async fn put_agent<T: serde::de::DeserializeOwned + Serialize>(
    app: &App,
    scope: &str,
    seg: &str,
    fam: &Family,
    body: Value,
) -> Result<Response, Error> {
    let mut m = normalise::<T>(body, &[])?;
    app.store
        .write(|tx| {
            let id = resolve(tx, scope, seg).ok_or_else(|| fam.missing())?;
            // The identifier names the connected agent; it cannot be changed over REST.
            let ident = tx
                .get(scope, &id)
                .and_then(|it| it.str_field("identifier"))
                .unwrap_or_default();
            set_str(&mut m, "identifier", ident);
            replace(tx, scope, fam, &id, m)
        })
        .await?;
    Ok(no_content())
}

async fn list_vm(State(app): State<App>) -> Result<Response, Error> {
    list(&app, &[], VM_SCOPE)
}
async fn get_vm(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Error> {
    get_agent(&app, VM_SCOPE, &id, &VM)
}
async fn put_vm(
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    put_agent::<VoicemailAgent>(&app, VM_SCOPE, &id, &VM, b).await
}
async fn list_rec(State(app): State<App>) -> Result<Response, Error> {
    list(&app, &[], REC_SCOPE)
}
async fn get_rec(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Error> {
    get_agent(&app, REC_SCOPE, &id, &REC)
}
async fn put_rec(
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    put_agent::<RecordingAgent>(&app, REC_SCOPE, &id, &REC, b).await
}

fn ids_scope(cs: &str) -> String {
    cs_scope(cs, "voicemailAgentIdentifiers")
}

async fn list_ids(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    list(&app, &[cs_parent(&cs)], &ids_scope(&cs))
}

async fn bind_id(
    State(app): State<App>,
    Path(cs): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    let ident = match b {
        Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            return Err(Error::precondition(
                "The body must be a voicemail agent identifier as a JSON string.",
            ))
        }
    };
    let sc = ids_scope(&cs);
    app.store
        .write(|tx| {
            ensure(tx, &[cs_parent(&cs)])?;
            if tx.contains(&sc, &ident) {
                return Err(Error::conflict(
                    "The voicemail agent identifier is already bound to the core server.",
                ));
            }
            tx.put(&sc, &ident, None, Value::String(ident.clone()));
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn get_id(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, &[cs_parent(&cs)])?;
        st.get(&ids_scope(&cs), &id)
            .map(|it| json_bytes(it.bytes.clone()))
            .ok_or_else(|| {
                Error::not_found("The voicemail agent identifier is not bound to the core server.")
            })
    })
}

async fn unbind_id(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store
        .write(|tx| {
            ensure(tx, &[cs_parent(&cs)])?;
            if !tx.delete(&ids_scope(&cs), &id) {
                return Err(Error::not_found(
                    "The voicemail agent identifier is not bound to the core server.",
                ));
            }
            Ok(())
        })
        .await?;
    Ok(no_content())
}
