//! Extensions of a core server (R4) with `getByName/{extension}` (resolved before routing),
//! their managing user (R5: GET 404 when unset, POST a user object, DELETE clears) and the
//! default-extension user (R6). Bindings live in their own scopes, keyed by extension id.

use super::*;
use crate::api::resource::EXTENSIONS as RES;
use crate::api::types::Extension;
use crate::server::store::{State as StoreState, Tx};
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::{get, MethodRouter};
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
    let at = collection::in_cs(RES.name());
    collection::routes::<Extension>(RES.collection, at, &FAMILY, finish, cascade)
        .route(
            "/asterisk/{cs}/extensions/{id}/managingUser",
            binding(manager, set_manager, unset_manager),
        )
        .route(
            "/asterisk/{cs}/extensions/{id}/defaultExtensionUser",
            binding(default_user, set_default, unset_default),
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

const MANAGING: &str = "managingUser";
const DEFAULT: &str = "defaultExtensionUser";

/// A request on a binding of the path's extension: its core server, its id and, for a POST,
/// the posted user object.
struct On<'a> {
    cs: &'a str,
    id: &'a str,
    body: &'a Value,
}

type Read = fn(&StoreState, &On<'_>) -> Result<Response, Error>;
type Change = fn(&mut Tx, &On<'_>) -> Result<(), Error>;

/// GET, POST and DELETE of one binding of an extension (R5, R6): `read`, `set` and `unset`
/// run in the store's read or transaction once the extension is known to exist.
fn binding(read: Read, set: Change, unset: Change) -> MethodRouter<App> {
    get(
        move |State(app): State<App>, Path((cs, id)): Path<(String, String)>| async move {
            let on = On {
                cs: &cs,
                id: &id,
                body: &Value::Null,
            };
            app.store.read(|st| {
                ensure(st, &ext_parents(&cs, &id))?;
                read(st, &on)
            })
        },
    )
    .post(
        move |State(app): State<App>,
              Path((cs, id)): Path<(String, String)>,
              JsonBody(b): JsonBody| async move {
            change(
                &app,
                &On {
                    cs: &cs,
                    id: &id,
                    body: &b,
                },
                set,
            )
            .await
        },
    )
    .delete(
        move |State(app): State<App>, Path((cs, id)): Path<(String, String)>| async move {
            change(
                &app,
                &On {
                    cs: &cs,
                    id: &id,
                    body: &Value::Null,
                },
                unset,
            )
            .await
        },
    )
}

async fn change(app: &App, on: &On<'_>, f: Change) -> Result<Response, Error> {
    app.store
        .write(|tx| {
            ensure(tx, &ext_parents(on.cs, on.id))?;
            f(tx, on)
        })
        .await?;
    Ok(no_content())
}

/// The id of the user bound to the extension in binding `what`.
fn bound(st: &StoreState, on: &On<'_>, what: &str) -> Option<String> {
    st.get(&cs_scope(on.cs, what), on.id)?.str_field("userId")
}

/// That user, as its stored JSON.
fn bound_user(st: &StoreState, on: &On<'_>, what: &str) -> Option<Response> {
    let uid = bound(st, on, what)?;
    st.get(&super::users::scope(on.cs), &uid)
        .map(|u| json_bytes(u.bytes.clone()))
}

fn manager(st: &StoreState, on: &On<'_>) -> Result<Response, Error> {
    bound_user(st, on, MANAGING).ok_or_else(|| Error::not_found("Extension has not set user"))
}

fn default_user(st: &StoreState, on: &On<'_>) -> Result<Response, Error> {
    if !st.contains(&cs_scope(on.cs, MANAGING), on.id) {
        return Err(Error::not_found("The extension is not bound to a user"));
    }
    bound_user(st, on, DEFAULT)
        .ok_or_else(|| Error::not_found("This extension is not a default extension"))
}

/// Bind the posted user in binding `what` once `check` (given the user's id) allows it.
fn bind(
    tx: &mut Tx,
    on: &On<'_>,
    what: &str,
    check: impl FnOnce(&mut Tx, &str) -> Result<(), Error>,
) -> Result<(), Error> {
    let uid = super::users::resolve(tx, on.cs, on.body)?;
    check(tx, &uid)?;
    tx.put(
        &cs_scope(on.cs, what),
        on.id,
        None,
        json!({ "userId": uid }),
    );
    Ok(())
}

/// Re-binding to another user replaces the binding (cxpanel does not DELETE first).
fn set_manager(tx: &mut Tx, on: &On<'_>) -> Result<(), Error> {
    bind(tx, on, MANAGING, |tx, uid| match bound(tx, on, MANAGING) {
        Some(current) if current == uid => Err(Error::conflict(
            "The Extension's managed user is already set to the given user.",
        )),
        _ => Ok(()),
    })
}

/// A user has one default extension: binding it drops the previous one.
fn set_default(tx: &mut Tx, on: &On<'_>) -> Result<(), Error> {
    bind(tx, on, DEFAULT, |tx, uid| {
        if bound(tx, on, MANAGING).as_deref() != Some(uid) {
            return Err(Error::not_found("The extension is not bound to a user"));
        }
        let sc = cs_scope(on.cs, DEFAULT);
        for e in tx.ids_with(&sc, "userId", uid) {
            tx.delete(&sc, &e);
        }
        Ok(())
    })
}

/// Unbinding the manager unbinds the default extension too.
fn unset_manager(tx: &mut Tx, on: &On<'_>) -> Result<(), Error> {
    if !tx.delete(&cs_scope(on.cs, MANAGING), on.id) {
        return Err(Error::not_found("Extension has not set user"));
    }
    tx.delete(&cs_scope(on.cs, DEFAULT), on.id);
    Ok(())
}

fn unset_default(tx: &mut Tx, on: &On<'_>) -> Result<(), Error> {
    if !tx.delete(&cs_scope(on.cs, DEFAULT), on.id) {
        return Err(Error::not_found(
            "This extension is not a default extension",
        ));
    }
    Ok(())
}
