//! Licensing of a core server (R20): read-only, plausible data for an unlimited licence (the
//! `full_users` property shows `[server] licensed_full_users` when set), so
//! status pages and probes work. `activate` and `bind` accept well-formed requests with 204.

use super::*;
use crate::api::types::{License, LicenseBind, ModuleLicense, ModuleLicenseProperty};
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::{get, post};

const BASE: &str = "/server/coreServers/{id}/license";

pub fn router() -> Router<App> {
    Router::new()
        .route(BASE, get(license))
        .route(&format!("{BASE}/activate"), post(activate))
        .route(&format!("{BASE}/bind/{{serial}}"), post(bind))
        .route(&format!("{BASE}/moduleLicenses"), get(modules))
        .route(&format!("{BASE}/moduleLicenses/{{ml}}"), get(module))
        .route(
            &format!("{BASE}/moduleLicenses/{{ml}}/properties"),
            get(properties),
        )
        .route(
            &format!("{BASE}/moduleLicenses/{{ml}}/properties/{{p}}"),
            get(property),
        )
}

/// Stable ids derived from the core server id.
fn derived(cs: &str, what: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{cs}/{what}").as_bytes(),
    )
    .to_string()
}

fn check(app: &App, cs: &str) -> Result<(), Error> {
    app.store.read(|st| ensure(st, &[cs_parent(cs)]))
}

fn module_list(cs: &str) -> Vec<ModuleLicense> {
    vec![ModuleLicense {
        id: derived(cs, "module/core"),
        module_id: "core".into(),
    }]
}

/// The licence properties; `full_users` is `[server] licensed_full_users` (-1: unlimited).
fn property_list(app: &App, cs: &str) -> Vec<ModuleLicenseProperty> {
    let full = app
        .licensed_full_users
        .map_or_else(|| "-1".to_string(), |n| n.to_string());
    [
        (
            "pbx_connections",
            "PBX Connections",
            "Number of PBX connections allowed.",
        ),
        ("full_users", "Full Users", "Number of full users allowed."),
    ]
    .into_iter()
    .map(|(key, name, desc)| ModuleLicenseProperty {
        id: derived(cs, &format!("property/{key}")),
        key: key.into(),
        value: if key == "full_users" {
            full.clone()
        } else {
            "-1".into()
        },
        display_name: name.into(),
        description: desc.into(),
        display: true,
    })
    .collect()
}

fn to_json<T: Serialize>(v: &T) -> Response {
    json_value(
        &serde_json::to_value(v).expect("a derived Serialize with string keys always serialises"),
    )
}

async fn license(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    check(&app, &cs)?;
    Ok(to_json(&License {
        id: Some(derived(&cs, "license")),
        serial: "EMBEDDED-UNLIMITED".into(),
        kind: "PERPETUAL".into(),
        licensed_to: "isymphony-sync embedded endpoint".into(),
        expiration_date: None,
        maintenance_expiration_date: Some(4_102_444_800_000),
        client_connections: -1,
        configured_users: -1,
    }))
}

async fn activate(
    State(app): State<App>,
    Path(cs): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    check(&app, &cs)?;
    match body {
        Value::String(s) if !s.trim().is_empty() => Ok(no_content()),
        _ => Err(Error::precondition("No serial key provided.")),
    }
}

async fn bind(
    State(app): State<App>,
    Path((cs, _serial)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, Error> {
    check(&app, &cs)?;
    normalise::<LicenseBind>(body, &[])?;
    Ok(no_content())
}

async fn modules(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    check(&app, &cs)?;
    Ok(to_json(&module_list(&cs)))
}

async fn module(
    State(app): State<App>,
    Path((cs, ml)): Path<(String, String)>,
) -> Result<Response, Error> {
    check(&app, &cs)?;
    module_list(&cs)
        .into_iter()
        .find(|m| m.id == ml)
        .map(|m| to_json(&m))
        .ok_or_else(|| Error::not_found("A module license with the given id does not exist."))
}

async fn properties(
    State(app): State<App>,
    Path((cs, ml)): Path<(String, String)>,
) -> Result<Response, Error> {
    check(&app, &cs)?;
    if !module_list(&cs).iter().any(|m| m.id == ml) {
        return Err(Error::not_found(
            "A module license with the given id does not exist.",
        ));
    }
    Ok(to_json(&property_list(&app, &cs)))
}

async fn property(
    State(app): State<App>,
    Path((cs, ml, p)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    check(&app, &cs)?;
    if !module_list(&cs).iter().any(|m| m.id == ml) {
        return Err(Error::not_found(
            "A module license with the given id does not exist.",
        ));
    }
    property_list(&app, &cs)
        .into_iter()
        .find(|x| x.id == p)
        .map(|x| to_json(&x))
        .ok_or_else(|| Error::not_found("A property with the given id does not exist."))
}
