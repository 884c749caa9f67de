//! The resource tree of the Configuration API, one file per resource family,
//! each exporting a router; plus the generic collection logic they share: parse a body through
//! the one wire type in `api::types`, check required fields, honour or mint the id, detect
//! duplicate ids and natural keys, store, answer.

pub mod administrators;
pub mod agents;
pub mod collection;
pub mod contacts;
pub mod core_servers;
pub mod extensions;
pub mod groups;
pub mod license;
pub mod objects;
pub mod strict;
pub mod users;

use super::app::App;
use super::error::Error;
use super::store::{State, Tx};
pub use crate::digest::sha1_hex;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Scope of the core servers.
pub const CORE_SERVERS: &str = "coreServers";

/// Scope of a collection below a core server; deleting `cs/<id>/` deletes them all.
/// The routes of a collection that carries a password (administrators, users): the hashed
/// form at the collection and at an item, and the same under `noHash/` (create, update).
pub fn password_routes(
    collection: &str,
    at_collection: axum::routing::MethodRouter<App>,
    create_nohash: axum::routing::MethodRouter<App>,
    at_item: axum::routing::MethodRouter<App>,
    update_nohash: axum::routing::MethodRouter<App>,
) -> Router<App> {
    Router::new()
        .route(&format!("/{collection}"), at_collection)
        .route(&format!("/{collection}/noHash"), create_nohash)
        .route(&format!("/{collection}/{{id}}"), at_item)
        .route(&format!("/{collection}/noHash/{{id}}"), update_nohash)
}

pub fn cs_scope(cs: &str, tail: &str) -> String {
    format!("cs/{cs}/{tail}")
}

pub type Obj = Map<String, Value>;

/// The whole tree (canonical paths, relative to the API prefix).
pub fn router() -> Router<App> {
    Router::new()
        .merge(core_servers::router())
        .merge(license::router())
        .merge(administrators::router())
        .merge(users::router())
        .merge(contacts::router())
        .merge(extensions::router())
        .merge(groups::router())
        .merge(objects::router())
        .merge(agents::router())
}

/// What the generic collection code needs to know about one resource family.
pub struct Family {
    /// Subject of the messages: "An extension" → "An extension with the given id already exists."
    pub a: &'static str,
    /// Natural key: (JSON field, word used in the 409 text).
    pub key: Option<(&'static str, &'static str)>,
    /// Fields that must be present and non-empty, with the 412 text.
    pub required: &'static [(&'static str, &'static str)],
}

impl Family {
    pub fn missing(&self) -> Error {
        Error::not_found(format!("{} with the given id does not exist.", self.a))
    }
}

/// A parent that must exist: (scope, id, 404 text).
pub type Parent = (String, String, &'static str);

pub const NO_CORE_SERVER: &str = "Failed to locate the core server with the given id.";
pub const NO_USER: &str = "A user with the given id does not exist.";

pub fn cs_parent(cs: &str) -> Parent {
    (CORE_SERVERS.into(), cs.into(), NO_CORE_SERVER)
}

pub fn ensure(st: &State, parents: &[Parent]) -> Result<(), Error> {
    for (scope, id, msg) in parents {
        if !st.contains(scope, id) {
            return Err(Error::not_found(*msg));
        }
    }
    Ok(())
}

pub fn json_bytes(bytes: Bytes) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

pub fn json_value(v: &Value) -> Response {
    json_bytes(Bytes::from(
        serde_json::to_vec(v).expect("a derived Serialize with string keys always serialises"),
    ))
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A JSON array of the objects of `scope`, built from their cached bytes.
pub fn list_bytes(st: &State, scope: &str) -> Bytes {
    match st.coll(scope) {
        Some(c) => c.listing(),
        None => Bytes::from_static(b"[]"),
    }
}

/// Deserialise `v` as the wire type `T`; a failure becomes a 412 naming the field.
pub fn typed<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    typed_ref(&v)
}

/// [`typed`] without taking the value.
pub fn typed_ref<T: DeserializeOwned>(v: &Value) -> Result<T, Error> {
    let probe = v;
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let mut field = e.path().to_string();
        if field.is_empty() || field == "." {
            // Flattened structs hide the path: find the field by trying them one at a time.
            if let Value::Object(m) = probe {
                field = m
                    .iter()
                    .find(|(k, v)| {
                        let mut one = Map::new();
                        one.insert((*k).clone(), (*v).clone());
                        serde_json::from_value::<T>(Value::Object(one)).is_err()
                    })
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default();
            }
        }
        let inner = e.into_inner();
        if field.is_empty() {
            Error::precondition(format!("Invalid JSON: {inner}."))
        } else {
            Error::precondition(format!("Invalid value for field '{field}': {inner}."))
        }
    })
}

/// Check a body: a JSON object with the required fields, normalised through `T` (numbers as
/// numbers, booleans as booleans, unknown fields kept).
pub fn normalise<T: DeserializeOwned + Serialize>(
    v: Value,
    required: &[(&str, &str)],
) -> Result<Obj, Error> {
    let Value::Object(m) = &v else {
        return Err(Error::precondition(
            "The request body must be a JSON object.",
        ));
    };
    for (field, msg) in required {
        let present = match m.get(*field) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
        };
        if !present {
            return Err(Error::precondition(*msg));
        }
    }
    let t: T = typed_ref(&v)?;
    match serde_json::to_value(t) {
        Ok(Value::Object(out)) => {
            strict::same_types(m, &out)?;
            Ok(out)
        }
        _ => Err(Error::Internal(
            "a wire type did not serialise to an object".into(),
        )),
    }
}

pub fn str_field<'a>(m: &'a Obj, field: &str) -> &'a str {
    m.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The body's `id` when given, else a fresh UUID v4. A client id holding `/` or a control
/// character is refused (412): ids are segments of the store's scope paths (a core server id
/// `cs1/users/u1` would alias another tenant's user) and `%00` is the router's "no such
/// object" marker.
pub fn take_id(m: &mut Obj) -> Result<String, Error> {
    let id = match m.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    if id.contains('/') || id.chars().any(char::is_control) {
        return Err(Error::precondition(
            "Invalid value for field 'id': it must not contain '/' or control characters.",
        ));
    }
    set_id_first(m, &id);
    Ok(id)
}

/// Put `id` first, as the real server's JSON shows it.
pub fn set_id_first(m: &mut Obj, id: &str) {
    m.remove("id");
    // Shifts the entries rather than rebuilding the map (no key hashed again).
    m.shift_insert(0, "id".into(), Value::String(id.into()));
}

pub fn natural_key(fam: &Family, m: &Obj) -> Option<String> {
    fam.key.map(|(f, _)| str_field(m, f).to_string())
}

/// Store a new object: 409 on a taken id or natural key.
pub fn insert(tx: &mut Tx, scope: &str, fam: &Family, id: &str, m: Obj) -> Result<(), Error> {
    if tx.contains(scope, id) {
        return Err(Error::conflict(format!(
            "{} with the given id already exists.",
            fam.a
        )));
    }
    let key = natural_key(fam, &m);
    if let (Some(k), Some((_, word))) = (&key, fam.key) {
        if tx.id_by_key(scope, k).is_some() {
            return Err(Error::conflict(format!(
                "{} with the given {word} already exists.",
                fam.a
            )));
        }
    }
    tx.put(scope, id, key, Value::Object(m));
    Ok(())
}

/// Replace an existing object (the path id wins): 404 when unknown, 409 on a key clash.
pub fn replace(tx: &mut Tx, scope: &str, fam: &Family, id: &str, mut m: Obj) -> Result<(), Error> {
    if !tx.contains(scope, id) {
        return Err(fam.missing());
    }
    set_id_first(&mut m, id);
    let key = natural_key(fam, &m);
    if let (Some(k), Some((_, word))) = (&key, fam.key) {
        if tx.id_by_key(scope, k).is_some_and(|other| other != id) {
            return Err(Error::conflict(format!(
                "{} with the given {word} already exists.",
                fam.a
            )));
        }
    }
    tx.put(scope, id, key, Value::Object(m));
    Ok(())
}

/// Adjusts a normalised object before it is stored: (object, id, stored value on update).
pub type Finish = fn(&mut Obj, &str, Option<&Value>) -> Result<(), Error>;

pub fn no_finish(_: &mut Obj, _: &str, _: Option<&Value>) -> Result<(), Error> {
    Ok(())
}

pub fn list(app: &App, parents: &[Parent], scope: &str) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, parents)?;
        Ok(json_bytes(list_bytes(st, scope)))
    })
}

pub fn get_one(
    app: &App,
    parents: &[Parent],
    scope: &str,
    id: &str,
    fam: &Family,
) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, parents)?;
        st.get(scope, id)
            .map(|it| json_bytes(it.bytes.clone()))
            .ok_or_else(|| fam.missing())
    })
}

pub async fn create<T: DeserializeOwned + Serialize>(
    app: &App,
    parents: &[Parent],
    scope: &str,
    fam: &Family,
    body: Value,
    finish: Finish,
) -> Result<Response, Error> {
    let mut m = normalise::<T>(body, fam.required)?;
    let id = take_id(&mut m)?;
    app.store
        .write(|tx| {
            ensure(tx, parents)?;
            finish(&mut m, &id, None)?;
            insert(tx, scope, fam, &id, m)
        })
        .await?;
    Ok(no_content())
}

pub async fn update<T: DeserializeOwned + Serialize>(
    app: &App,
    parents: &[Parent],
    scope: &str,
    id: &str,
    fam: &Family,
    body: Value,
    finish: Finish,
) -> Result<Response, Error> {
    let mut m = normalise::<T>(body, fam.required)?;
    app.store
        .write(|tx| {
            ensure(tx, parents)?;
            let old = tx.get(scope, id).ok_or_else(|| fam.missing())?.value();
            finish(&mut m, id, Some(&old))?;
            replace(tx, scope, fam, id, m)
        })
        .await?;
    Ok(no_content())
}

/// Delete one object and, through `cascade`, whatever depends on it.
pub async fn delete(
    app: &App,
    parents: &[Parent],
    scope: &str,
    id: &str,
    fam: &Family,
    cascade: impl FnOnce(&mut Tx, &str),
) -> Result<Response, Error> {
    app.store
        .write(|tx| {
            ensure(tx, parents)?;
            if !tx.delete(scope, id) {
                return Err(fam.missing());
            }
            cascade(tx, id);
            Ok(())
        })
        .await?;
    Ok(no_content())
}

pub fn no_cascade(_: &mut Tx, _: &str) {}

/// How a password arrives: clear text (hashing paths) or as stored (`noHash`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PwMode {
    Hash,
    NoHash,
}

/// Set `m.password` to what is stored: SHA-1 of a clear value, a `noHash` value verbatim
/// (lower-cased when it is a 40-hex digest), the stored digest when a hashing PUT sends it
/// back unchanged (as iSymphony does), or the stored value when a PUT omits it.
pub fn apply_password(m: &mut Obj, old: Option<&Value>, mode: PwMode) -> Result<(), Error> {
    let given = str_field(m, "password").to_string();
    let stored = old
        .and_then(|o| o.get("password"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let value = if given.is_empty() {
        match stored {
            Some(s) => s,
            None => return Err(Error::precondition("No password provided.")),
        }
    } else if mode == PwMode::NoHash {
        if given.len() == 40 && given.bytes().all(|b| b.is_ascii_hexdigit()) {
            given.to_ascii_lowercase()
        } else {
            given
        }
    } else if stored.as_deref() == Some(given.as_str()) {
        given
    } else {
        sha1_hex(&given)
    };
    m.insert("password".into(), Value::String(value));
    Ok(())
}

/// Keep a read-only field's stored value (or null) whatever the body says.
pub fn keep_read_only(m: &mut Obj, old: Option<&Value>, field: &str) {
    let v = old
        .and_then(|o| o.get(field))
        .cloned()
        .unwrap_or(Value::Null);
    m.insert(field.into(), v);
}

pub fn set_str(m: &mut Obj, field: &str, v: impl Into<String>) {
    m.insert(field.into(), Value::String(v.into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::Extension;
    use serde_json::json;

    #[test]
    fn wrong_type_names_the_field() {
        let e =
            normalise::<Extension>(json!({"extension": "1", "autoAnswer": [1]}), &[]).unwrap_err();
        assert!(e.message().contains("autoAnswer"), "{e}");
    }

    #[test]
    fn missing_required_field_uses_the_documented_text() {
        let e = normalise::<Extension>(
            json!({"displayName": "x"}),
            &[("extension", "No extension provided.")],
        )
        .unwrap_err();
        assert_eq!(e.message(), "No extension provided.");
    }

    #[test]
    fn the_id_goes_first_and_the_rest_keeps_its_order() {
        let Value::Object(mut m) = json!({"a": 1, "id": "old", "b": 2, "c": 3}) else {
            unreachable!()
        };
        let mut expected = m.clone();
        expected.remove("id");
        set_id_first(&mut m, "new");
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut want = vec!["id"];
        want.extend(expected.keys().map(String::as_str));
        assert_eq!(keys, want);
        assert_eq!(m["id"], json!("new"));
    }

    #[test]
    fn passwords() {
        let mut m = Obj::new();
        set_str(&mut m, "password", "secret");
        apply_password(&mut m, None, PwMode::Hash).unwrap();
        let digest = sha1_hex("secret");
        assert_eq!(str_field(&m, "password"), digest);
        // A hashing PUT sending the stored digest back keeps it.
        let old = Value::Object(m.clone());
        apply_password(&mut m, Some(&old), PwMode::Hash).unwrap();
        assert_eq!(str_field(&m, "password"), digest);
        let mut n = Obj::new();
        set_str(&mut n, "password", digest.to_uppercase());
        apply_password(&mut n, None, PwMode::NoHash).unwrap();
        assert_eq!(str_field(&n, "password"), digest);
        let mut n = Obj::new();
        set_str(&mut n, "password", "AbC");
        apply_password(&mut n, None, PwMode::NoHash).unwrap();
        assert_eq!(str_field(&n, "password"), "AbC");
    }
}
