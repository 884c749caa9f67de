//! Extension groups (R19) and their members: `extensionGroups/{g}/extensions` (extension
//! objects), `…/users` and `…/editors` (user objects). A member is posted as the object and
//! resolved by id (then by extension number / username); GET lists the members' current JSON.

use super::*;
use crate::api::types::ExtensionGroup;
use crate::server::store::{State as StoreState, Tx};
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::json;

pub const FAMILY: Family = Family {
    a: "An extension group",
    key: Some(("displayName", "displayName")),
    required: &[("displayName", "No displayName provided.")],
};

fn scope(cs: &str) -> String {
    cs_scope(cs, "extensionGroups")
}

pub fn router() -> Router<App> {
    let at = collection::in_cs("extensionGroups");
    // The group is `{id}` here as in the collection's item routes.
    let members = "/asterisk/{cs}/extensionGroups/{id}/{kind}";
    let group = "asterisk/{cs}/extensionGroups";
    collection::routes::<ExtensionGroup>(group, at, &FAMILY, no_finish, drop_members)
        .route(members, get(list_members).post(add_member))
        .route(
            &format!("{members}/{{m}}"),
            get(get_member).delete(delete_member),
        )
}

/// A group's member lists go with it.
fn drop_members(tx: &mut Tx, cs: &str, g: &str) {
    tx.delete_prefix(&format!("{}/{g}/", scope(cs)));
}

/// Where members of `kind` are stored and where the member objects themselves live.
fn member_scopes(cs: &str, g: &str, kind: &str) -> Result<(String, String), Error> {
    let target = match kind {
        "extensions" => super::extensions::scope(cs),
        "users" | "editors" => super::users::scope(cs),
        _ => return Err(Error::not_found("No such resource.")),
    };
    Ok((format!("{}/{g}/{kind}", scope(cs)), target))
}

fn group_parents(cs: &str, g: &str) -> Vec<Parent> {
    vec![
        cs_parent(cs),
        (
            scope(cs),
            g.into(),
            "An extension group with the given id does not exist.",
        ),
    ]
}

async fn list_members(
    State(app): State<App>,
    Path((cs, g, kind)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    let (ms, target) = member_scopes(&cs, &g, &kind)?;
    app.store.read(|st| {
        ensure(st, &group_parents(&cs, &g))?;
        let mut out = vec![b'['];
        let mut first = true;
        for (id, _) in st.items(&ms) {
            if let Some(obj) = st.get(&target, id) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&obj.bytes);
            }
        }
        out.push(b']');
        Ok(json_bytes(out.into()))
    })
}

fn resolve_member(
    st: &StoreState,
    cs: &str,
    kind: &str,
    target: &str,
    b: &Value,
) -> Result<String, Error> {
    if kind != "extensions" {
        return super::users::resolve(st, cs, b);
    }
    // Checked as an extension object: 412 for a field of the wrong type.
    let m = &normalise::<crate::api::types::Extension>(b.clone(), &[])?;
    let id = str_field(m, "id");
    if !id.is_empty() && st.contains(target, id) {
        return Ok(id.into());
    }
    let number = match m.get("extension") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ if !id.is_empty() => {
            return Err(Error::not_found(
                "An extension with the given id does not exist.",
            ))
        }
        _ => return Err(Error::precondition("No extension provided.")),
    };
    st.id_by_key(target, &number)
        .map(str::to_string)
        .ok_or_else(|| Error::not_found("An extension with the given extension does not exist."))
}

async fn add_member(
    State(app): State<App>,
    Path((cs, g, kind)): Path<(String, String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    let (ms, target) = member_scopes(&cs, &g, &kind)?;
    app.store
        .write(|tx| {
            ensure(tx, &group_parents(&cs, &g))?;
            let id = resolve_member(tx, &cs, &kind, &target, &b)?;
            if tx.contains(&ms, &id) {
                return Err(Error::conflict(
                    "The given member already belongs to the extension group.",
                ));
            }
            tx.put(&ms, &id, None, json!({ "id": id }));
            Ok(())
        })
        .await?;
    Ok(no_content())
}

async fn get_member(
    State(app): State<App>,
    Path((cs, g, kind, m)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let (ms, target) = member_scopes(&cs, &g, &kind)?;
    app.store.read(|st| {
        ensure(st, &group_parents(&cs, &g))?;
        if !st.contains(&ms, &m) {
            return Err(Error::not_found(
                "The given member does not belong to the extension group.",
            ));
        }
        st.get(&target, &m)
            .map(|it| json_bytes(it.bytes.clone()))
            .ok_or_else(|| Error::not_found("The member no longer exists."))
    })
}

async fn delete_member(
    State(app): State<App>,
    Path((cs, g, kind, m)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let (ms, _) = member_scopes(&cs, &g, &kind)?;
    app.store
        .write(|tx| {
            ensure(tx, &group_parents(&cs, &g))?;
            if !tx.delete(&ms, &m) {
                return Err(Error::not_found(
                    "The given member does not belong to the extension group.",
                ));
            }
            Ok(())
        })
        .await?;
    Ok(no_content())
}
