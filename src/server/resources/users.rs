//! Users of a core server (R7): `core/{cs}/users[/noHash][/{id}]`. Passwords as for
//! administrators; `permissionId`/`permissionDisplayName` are derived. Deleting a user deletes
//! its contact data and unbinds the extensions it manages and the groups it belongs to.

use super::*;
use crate::api::resource::USERS as RES;
use crate::api::types::User;
use crate::server::store::Tx;
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::{post, put};

pub const FAMILY: Family = Family {
    a: "A user",
    key: Some((RES.key, "username")),
    required: &[(RES.key, "No username provided.")],
};

pub fn scope(cs: &str) -> String {
    cs_scope(cs, RES.name())
}

pub fn router() -> Router<App> {
    let at = collection::in_cs(RES.name());
    let delete = collection::delete_in(at, &FAMILY, cascade);
    password_routes(
        RES.collection,
        collection::list_in(at).post(create_hash),
        post(create_nohash),
        collection::get_in(at, &FAMILY).put(put_hash).merge(delete),
        put(put_nohash),
    )
}

fn finish(m: &mut Obj, id: &str, old: Option<&Value>, mode: PwMode) -> Result<(), Error> {
    apply_password(m, old, mode)?;
    keep_read_only(m, old, "lastPasswordChangedAt");
    if str_field(m, "displayName").is_empty() {
        let name = str_field(m, "username").to_string();
        set_str(m, "displayName", name);
    }
    let label = str_field(m, "displayName").to_string();
    set_str(m, "permissionId", id);
    set_str(m, "permissionDisplayName", label);
    Ok(())
}

fn finish_hash(m: &mut Obj, id: &str, old: Option<&Value>) -> Result<(), Error> {
    finish(m, id, old, PwMode::Hash)
}

fn finish_nohash(m: &mut Obj, id: &str, old: Option<&Value>) -> Result<(), Error> {
    finish(m, id, old, PwMode::NoHash)
}

/// Everything that refers to user `id` of core server `cs` goes with it.
pub fn cascade(tx: &mut Tx, cs: &str, id: &str) {
    tx.delete_prefix(&format!("cs/{cs}/users/{id}/"));
    for binding in ["managingUser", "defaultExtensionUser"] {
        let scope = cs_scope(cs, binding);
        for ext in tx.ids_with(&scope, "userId", id) {
            tx.delete(&scope, &ext);
        }
    }
    let groups: Vec<String> = tx
        .items(&cs_scope(cs, "extensionGroups"))
        .map(|(g, _)| g.to_string())
        .collect();
    for g in groups {
        for kind in ["users", "editors"] {
            tx.delete(&cs_scope(cs, &format!("extensionGroups/{g}/{kind}")), id);
        }
    }
}

async fn create_hash(
    State(app): State<App>,
    Path(cs): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    write_user(&app, &cs, None, b, finish_hash).await
}

async fn create_nohash(
    State(app): State<App>,
    Path(cs): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    write_user(&app, &cs, None, b, finish_nohash).await
}

async fn put_hash(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    write_user(&app, &cs, Some(&id), b, finish_hash).await
}

async fn put_nohash(
    State(app): State<App>,
    Path((cs, id)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    write_user(&app, &cs, Some(&id), b, finish_nohash).await
}

/// The generic create (`id` None) or update, plus the licence check of `[server]
/// licensed_full_users` inside the same transaction.
async fn write_user(
    app: &App,
    cs: &str,
    id: Option<&str>,
    body: Value,
    finish: Finish,
) -> Result<Response, Error> {
    let sc = scope(cs);
    let mut m = normalise::<User>(body, FAMILY.required)?;
    let creating = id.is_none();
    let id = match id {
        Some(id) => id.to_string(),
        None => take_id(&mut m)?,
    };
    let wants_full = m.get("full").and_then(Value::as_bool).unwrap_or(false);
    let limit = app.licensed_full_users;
    app.store
        .write(|tx| {
            ensure(tx, &[cs_parent(cs)])?;
            let old = if creating {
                None
            } else {
                Some(tx.get(&sc, &id).ok_or_else(|| FAMILY.missing())?.value())
            };
            if let (Some(limit), true) = (limit, wants_full) {
                check_full_licence(tx, &sc, &id, old.as_ref(), limit)?;
            }
            finish(&mut m, &id, old.as_ref())?;
            match old {
                None => insert(tx, &sc, &FAMILY, &id, m),
                Some(_) => replace(tx, &sc, &FAMILY, &id, m),
            }
        })
        .await?;
    Ok(no_content())
}

/// Refuse (403, as iSymphony refuses a change for licensing) making one more user full when
/// `limit` full users exist already; a user that is full already stays so.
fn check_full_licence(
    st: &crate::server::store::State,
    sc: &str,
    id: &str,
    old: Option<&Value>,
    limit: u32,
) -> Result<(), Error> {
    let is_full = |v: &Value| v.get("full").and_then(Value::as_bool).unwrap_or(false);
    if old.is_some_and(is_full) {
        return Ok(());
    }
    let in_use = st
        .items(sc)
        .filter(|(other, it)| *other != id && is_full(&it.value()))
        .count();
    if in_use >= limit as usize {
        return Err(Error::Forbidden(format!(
            "No full user licenses are available ({limit} licensed, {in_use} in use): \
             the user cannot be made a full user."
        )));
    }
    Ok(())
}

/// Find the stored user a posted user object means: by `id`, else by `username`.
/// The body is checked as a user object (412 for a field of the wrong type).
pub fn resolve(st: &crate::server::store::State, cs: &str, body: &Value) -> Result<String, Error> {
    let m = &normalise::<User>(body.clone(), &[])?;
    let sc = scope(cs);
    let id = str_field(m, "id");
    if !id.is_empty() && st.contains(&sc, id) {
        return Ok(id.to_string());
    }
    let username = str_field(m, "username");
    if username.is_empty() {
        if !id.is_empty() {
            return Err(Error::not_found(NO_USER));
        }
        return Err(Error::precondition("No username provided."));
    }
    st.id_by_key(&sc, username)
        .map(str::to_string)
        .ok_or_else(|| Error::not_found("A user with the given username does not exist."))
}
