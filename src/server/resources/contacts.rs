//! User contact data (R8-R10): `contact/{cs}/users/{userId}` (404 until the first PUT, PUT
//! upserts), its `emailAddresses` (the docs' `emailAdresses` is rewritten to this before
//! routing) and `phoneNumbers`.

use super::*;
use crate::api::types::{Contact, EmailAddress, PhoneNumber};
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::get;

const CONTACT_ID: &str = "contact";

const EMAIL: Family = Family {
    a: "An email address",
    key: None,
    required: &[("address", "No address provided.")],
};
const PHONE: Family = Family {
    a: "A phone number",
    key: None,
    required: &[("number", "No number provided.")],
};

pub fn router() -> Router<App> {
    Router::new()
        .route("/contact/{cs}/users", get(list_contacts))
        .route(
            "/contact/{cs}/users/{uid}",
            get(get_contact).put(put_contact),
        )
        .merge(members::<EmailAddress>("emailAddresses", &EMAIL))
        .merge(members::<PhoneNumber>("phoneNumbers", &PHONE))
}

/// The routes of a user's `what` (its email addresses or phone numbers).
fn members<T>(what: &'static str, fam: &'static Family) -> Router<App>
where
    T: serde::de::DeserializeOwned + Serialize + Send + 'static,
{
    let at = move |p: &[String]| {
        let [cs, uid] = p else {
            // Not routed so; no core server has the empty id (404).
            return (vec![cs_parent("")], String::new());
        };
        (parents(cs, uid), sub(cs, uid, what))
    };
    let collection = format!("contact/{{cs}}/users/{{uid}}/{what}");
    collection::routes::<T>(&collection, at, fam, no_finish, collection::nothing_depends)
}

fn parents(cs: &str, uid: &str) -> Vec<Parent> {
    vec![
        cs_parent(cs),
        (super::users::scope(cs), uid.into(), NO_USER),
    ]
}

fn sub(cs: &str, uid: &str, what: &str) -> String {
    format!("cs/{cs}/users/{uid}/{what}")
}

async fn list_contacts(State(app): State<App>, Path(cs): Path<String>) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, &[cs_parent(&cs)])?;
        let mut out = vec![b'['];
        let mut first = true;
        for (uid, _) in st.items(&super::users::scope(&cs)) {
            if let Some(c) = st.get(&sub(&cs, uid, "contact"), CONTACT_ID) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&c.bytes);
            }
        }
        out.push(b']');
        Ok(json_bytes(out.into()))
    })
}

async fn get_contact(
    State(app): State<App>,
    Path((cs, uid)): Path<(String, String)>,
) -> Result<Response, Error> {
    app.store.read(|st| {
        ensure(st, &parents(&cs, &uid))?;
        st.get(&sub(&cs, &uid, "contact"), CONTACT_ID)
            .map(|it| json_bytes(it.bytes.clone()))
            .ok_or_else(|| Error::not_found("The user does not have a contact."))
    })
}

async fn put_contact(
    State(app): State<App>,
    Path((cs, uid)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    let mut m = normalise::<Contact>(b, &[])?;
    let sc = sub(&cs, &uid, "contact");
    app.store
        .write(|tx| {
            ensure(tx, &parents(&cs, &uid))?;
            let id = match tx.get(&sc, CONTACT_ID) {
                Some(old) => old.str_field("id").unwrap_or_default(),
                None => match str_field(&m, "id") {
                    "" => uuid::Uuid::new_v4().to_string(),
                    given => given.to_string(),
                },
            };
            set_id_first(&mut m, &id);
            set_str(&mut m, "userConfigurationId", uid.as_str());
            tx.put(&sc, CONTACT_ID, None, Value::Object(m));
            Ok(())
        })
        .await?;
    Ok(no_content())
}
