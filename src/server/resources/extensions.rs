//! Extensions of a core server (R4) with `getByName/{extension}` (resolved before routing),
//! their managing user (R5: GET 404 when unset, POST a user object, DELETE clears) and the
//! default-extension user (R6). Bindings live in their own scopes, keyed by extension id.

use super::*;
use crate::api::resource::EXTENSIONS as RES;
use crate::api::types::Extension;
use crate::server::store::Tx;
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

pub const FAMILY: Family = Family {
    a: "An extension",
    key: Some((RES.key, "extension")),
    required: &[(RES.key, "No extension provided.")],
};

pub fn scope(cs: &str) -> String {
    cs_scope(cs, RES.name())
}

pub fn router() -> Router<App> {
    Router::new()
        .route(
            &format!("/{}", RES.collection),
            get(list_all).post(create_ext),
        )
        .route(
            &format!("/{}/{{id}}", RES.collection),
            get(get_ext).put(put_ext).delete(delete_ext),
        )
        .route(
            "/asterisk/{cs}/extensions/{id}/managingUser",
            get(get_managing)
                .post(post_managing)
                .delete(delete_managing),
        )
        .route(
            "/asterisk/{cs}/extensions/{id}/defaultExtensionUser",
            get(get_default).post(post_default).delete(delete_default),
        )
}

fn finish(m: &mut Obj, id: &str, _: Option<&Value>) -> Result<(), Error> {
    let label = format!(
        "{} <{}>",
        str_field(m, "displayName"),
        str_field(m, "extension")
    );
    set_str(m, "permissionId", id);
    set_str(m, "permissionDisplayName", label);
    Ok(())
}

/// An extension's bindings and group memberships go with it.
pub fn cascade(tx: &mut Tx, cs: &str, id: &str) {
    tx.delete(&cs_scope(cs, "managingUser"), id);
    tx.delete(&cs_scope(cs, "defaultExtensionUser"), id);
    let groups: Vec<String> = tx
        .items(&cs_scope(cs, "extensionGroups"))
        .map(|(g, _)| g.to_string())
        .collect();
    for g in groups {
        tx.delete(
            &cs_scope(cs, &format!("extensionGroups/{g}/extensions")),
            id,
        );
    }
}

async fn list_all(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    list(&app, &[cs_parent(&cs)], &scope(&cs))
}

async fn create_ext(
    State(app): State<App>,
    Path(cs): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    create::<Extension>(&app, &[cs_parent(&cs)], &scope(&cs), &FAMILY, b, finish).await
}

async fn get_ext(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    get_one(&app, &[cs_parent(&cs)], &scope(&cs), &id, &FAMILY)
}

async fn put_ext(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    update::<Extension>(
        &app,
        &[cs_parent(&cs)],
        &scope(&cs),
        &id,
        &FAMILY,
        b,
        finish,
    )
    .await
}

async fn delete_ext(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    delete(
        &app,
        &[cs_parent(&cs)],
        &scope(&cs),
        &id,
        &FAMILY,
        |tx, id| cascade(tx, &cs, id),
    )
    .await
}

fn ext_parents(cs: &str, id: &str) -> Vec<Parent> {
    vec![
        cs_parent(cs),
        (
            scope(cs),
            id.into(),
            "An extension with the given id does not exist.",
        ),
    ]
}

/// The user bound to extension `id` in binding scope `what`, as its stored JSON.
fn bound_user(
    st: &crate::server::store::State,
    cs: &str,
    what: &str,
    id: &str,
) -> Option<Response> {
    let uid = st.get(&cs_scope(cs, what), id)?.str_field("userId")?;
    st.get(&super::users::scope(cs), &uid)
        .map(|u| json_bytes(u.bytes.clone()))
}

async fn get_managing(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, &ext_parents(&cs, &id))?;
        bound_user(st, &cs, "managingUser", &id)
            .ok_or_else(|| Error::not_found("Extension has not set user"))
    })
}

async fn post_managing(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    let sc = cs_scope(&cs, "managingUser");
    app.store
        .write(|tx| {
            ensure(tx, &ext_parents(&cs, &id))?;
            let uid = super::users::resolve(tx, &cs, &b)?;
            let current = tx.get(&sc, &id).and_then(|it| it.str_field("userId"));
            if current.as_deref() == Some(uid.as_str()) {
                return Err(Error::conflict(
                    "The Extension's managed user is already set to the given user.",
                ));
            }
            // Re-binding to another user replaces the binding (cxpanel does not DELETE first).
            tx.put(&sc, &id, None, json!({ "userId": uid }));
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn delete_managing(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store
        .write(|tx| {
            ensure(tx, &ext_parents(&cs, &id))?;
            if !tx.delete(&cs_scope(&cs, "managingUser"), &id) {
                return Err(Error::not_found("Extension has not set user"));
            }
            tx.delete(&cs_scope(&cs, "defaultExtensionUser"), &id);
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn get_default(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, &ext_parents(&cs, &id))?;
        if !st.contains(&cs_scope(&cs, "managingUser"), &id) {
            return Err(Error::not_found("The extension is not bound to a user"));
        }
        bound_user(st, &cs, "defaultExtensionUser", &id)
            .ok_or_else(|| Error::not_found("This extension is not a default extension"))
    })
}

async fn post_default(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    let sc = cs_scope(&cs, "defaultExtensionUser");
    app.store
        .write(|tx| {
            ensure(tx, &ext_parents(&cs, &id))?;
            let uid = super::users::resolve(tx, &cs, &b)?;
            let manager = tx
                .get(&cs_scope(&cs, "managingUser"), &id)
                .and_then(|it| it.str_field("userId"));
            if manager.as_deref() != Some(uid.as_str()) {
                return Err(Error::not_found("The extension is not bound to a user"));
            }
            // A user has one default extension: drop the previous one.
            for e in tx.ids_with(&sc, "userId", &uid) {
                tx.delete(&sc, &e);
            }
            tx.put(&sc, &id, None, json!({ "userId": uid }));
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn delete_default(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store
        .write(|tx| {
            ensure(tx, &ext_parents(&cs, &id))?;
            if !tx.delete(&cs_scope(&cs, "defaultExtensionUser"), &id) {
                return Err(Error::not_found(
                    "This extension is not a default extension",
                ));
            }
            Ok(())
        })
        .await?;
    Ok(no_content())
}
