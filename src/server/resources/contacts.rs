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
        .route(
            "/contact/{cs}/users/{uid}/emailAddresses",
            get(list_emails).post(create_email),
        )
        .route(
            "/contact/{cs}/users/{uid}/emailAddresses/{id}",
            get(get_email).put(put_email).delete(delete_email),
        )
        .route(
            "/contact/{cs}/users/{uid}/phoneNumbers",
            get(list_phones).post(create_phone),
        )
        .route(
            "/contact/{cs}/users/{uid}/phoneNumbers/{id}",
            get(get_phone).put(put_phone).delete(delete_phone),
        )
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

macro_rules! member_handlers {
    ($what:literal, $ty:ty, $fam:expr, $list:ident, $create:ident, $get:ident, $put:ident, $delete:ident) => {
        async fn $list(
            State(app): State<App>,
            Path((cs, uid)): Path<(String, String)>,
        ) -> Result<Response, Error> {
            list(&app, &parents(&cs, &uid), &sub(&cs, &uid, $what))
        }
        async fn $create(
            State(app): State<App>,
            Path((cs, uid)): Path<(String, String)>,
            JsonBody(b): JsonBody,
        ) -> Result<Response, Error> {
            create::<$ty>(
                &app,
                &parents(&cs, &uid),
                &sub(&cs, &uid, $what),
                &$fam,
                b,
                no_finish,
            )
            .await
        }
        async fn $get(
            State(app): State<App>,
            Path((cs, uid, id)): Path<(String, String, String)>,
        ) -> Result<Response, Error> {
            get_one(
                &app,
                &parents(&cs, &uid),
                &sub(&cs, &uid, $what),
                &id,
                &$fam,
            )
        }
        async fn $put(
            State(app): State<App>,
            Path((cs, uid, id)): Path<(String, String, String)>,
            JsonBody(b): JsonBody,
        ) -> Result<Response, Error> {
            let sc = sub(&cs, &uid, $what);
            update::<$ty>(&app, &parents(&cs, &uid), &sc, &id, &$fam, b, no_finish).await
        }
        async fn $delete(
            State(app): State<App>,
            Path((cs, uid, id)): Path<(String, String, String)>,
        ) -> Result<Response, Error> {
            let sc = sub(&cs, &uid, $what);
            delete(&app, &parents(&cs, &uid), &sc, &id, &$fam, no_cascade).await
        }
    };
}

member_handlers!(
    "emailAddresses",
    EmailAddress,
    EMAIL,
    list_emails,
    create_email,
    get_email,
    put_email,
    delete_email
);
member_handlers!(
    "phoneNumbers",
    PhoneNumber,
    PHONE,
    list_phones,
    create_phone,
    get_phone,
    put_phone,
    delete_phone
);
