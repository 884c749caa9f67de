//! Core servers (R1, with `getBySlug`/`getByName` resolved before routing), the core-server
//! configuration root `core/{cs}` (R2), the Asterisk settings `asterisk/{cs}` (R3, seeded so a
//! cxpanel-style first sync is a no-op) and `server/brand` (R21).

use super::*;
use crate::api::types::{AsteriskSettings, Brand, CoreConfig, CoreServer};
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

pub const FAMILY: Family = Family {
    a: "A core server",
    key: Some(("slug", "slug")),
    required: &[("slug", "No slug provided."), ("name", "No name provided.")],
};

const SETTINGS: &str = "settings";

pub fn router() -> Router<App> {
    Router::new()
        .route("/server/coreServers", get(list_cs).post(create_cs))
        .route(
            "/server/coreServers/{id}",
            get(get_cs).put(put_cs).delete(delete_cs),
        )
        .route("/core/{cs}", get(core_root))
        .route("/asterisk/{cs}", get(get_settings).put(put_settings))
        .route("/server/brand", get(brand))
}

async fn list_cs(State(app): State<App>) -> Result<Response, Error> {
    list(&app, &[], CORE_SERVERS)
}

async fn create_cs(State(app): State<App>, JsonBody(body): JsonBody) -> Result<Response, Error> {
    let mut m = normalise::<CoreServer>(body, FAMILY.required)?;
    let id = take_id(&mut m)?;
    app.store
        .write(|tx| {
            insert(tx, CORE_SERVERS, &FAMILY, &id, m)?;
            let settings = serde_json::to_value(AsteriskSettings {
                originating_context: "from-internal".into(),
                redirecting_context: "from-internal".into(),
                music_on_hold_class: "default".into(),
                extra: Default::default(),
            })
            .expect("a derived Serialize with string keys always serialises");
            tx.put(&cs_scope(&id, "asterisk"), SETTINGS, None, settings);
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn get_cs(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Error> {
    get_one(&app, &[], CORE_SERVERS, &id, &FAMILY)
}

async fn put_cs(
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    update::<CoreServer>(&app, &[], CORE_SERVERS, &id, &FAMILY, body, no_finish).await
}

async fn delete_cs(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Error> {
    delete(&app, &[], CORE_SERVERS, &id, &FAMILY, |tx, id| {
        tx.delete_prefix(&format!("cs/{id}/"))
    })
    .await
}

async fn core_root(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    app.store.read(|st| ensure(st, &[cs_parent(&cs)]))?;
    Ok(json_value(
        &serde_json::to_value(CoreConfig { server_id: cs })
            .expect("a derived Serialize with string keys always serialises"),
    ))
}

async fn get_settings(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, &[cs_parent(&cs)])?;
        Ok(match st.get(&cs_scope(&cs, "asterisk"), SETTINGS) {
            Some(it) => json_bytes(it.bytes.clone()),
            None => json_value(
                &serde_json::to_value(AsteriskSettings::default())
                    .expect("a derived Serialize with string keys always serialises"),
            ),
        })
    })
}

async fn put_settings(
    State(app): State<App>,
    Path(cs): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    let m = normalise::<AsteriskSettings>(body, &[])?;
    app.store
        .write(|tx| {
            ensure(tx, &[cs_parent(&cs)])?;
            tx.put(&cs_scope(&cs, "asterisk"), SETTINGS, None, Value::Object(m));
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn brand() -> Response {
    let b = Brand {
        version: "3.5.0".into(),
        build: format!("isymphony-sync {}", env!("CARGO_PKG_VERSION")),
        extra: serde_json::from_value(json!({"name": "iSymphony (embedded, isymphony-sync)"}))
            .unwrap_or_default(),
    };
    json_value(
        &serde_json::to_value(b).expect("a derived Serialize with string keys always serialises"),
    )
}
