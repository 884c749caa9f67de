//! Server administrators (R18): `server/administrators[/noHash][/{id}]`. The hashing paths
//! store the SHA-1 of a clear password, `noHash` stores the value as sent.

use super::*;
use crate::api::resource::ADMINISTRATORS as RES;
use crate::api::types::Administrator;
use crate::server::JsonBody;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};

pub const FAMILY: Family = Family {
    a: "An administrator",
    key: Some((RES.key, "username")),
    required: &[(RES.key, "No username provided.")],
};

pub fn router() -> Router<App> {
    password_routes(
        RES.collection,
        get(list_all).post(create_hash),
        post(create_nohash),
        get(get_admin).put(put_hash).delete(delete_admin),
        put(put_nohash),
    )
}

fn finish_hash(m: &mut Obj, _: &str, old: Option<&Value>) -> Result<(), Error> {
    apply_password(m, old, PwMode::Hash)
}

fn finish_nohash(m: &mut Obj, _: &str, old: Option<&Value>) -> Result<(), Error> {
    apply_password(m, old, PwMode::NoHash)
}

async fn list_all(State(app): State<App>) -> Result<Response, Error> {
    list(&app, &[], RES.name())
}

async fn create_hash(State(app): State<App>, JsonBody(b): JsonBody) -> Result<Response, Error> {
    create::<Administrator>(&app, &[], RES.name(), &FAMILY, b, finish_hash).await
}

async fn create_nohash(State(app): State<App>, JsonBody(b): JsonBody) -> Result<Response, Error> {
    create::<Administrator>(&app, &[], RES.name(), &FAMILY, b, finish_nohash).await
}

async fn get_admin(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Error> {
    get_one(&app, &[], RES.name(), &id, &FAMILY)
}

async fn put_hash(
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    update::<Administrator>(&app, &[], RES.name(), &id, &FAMILY, b, finish_hash).await
}

async fn put_nohash(
    State(app): State<App>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Result<Response, Error> {
    update::<Administrator>(&app, &[], RES.name(), &id, &FAMILY, b, finish_nohash).await
}

async fn delete_admin(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Error> {
    delete(&app, &[], RES.name(), &id, &FAMILY, no_cascade).await
}
