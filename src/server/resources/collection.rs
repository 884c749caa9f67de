//! The handlers of a plain collection (GET and POST at the collection, GET, PUT and DELETE at
//! an item), built from the generic collection logic once for every family that is one:
//! extensions, users, extension groups, queues, conference rooms, parking lots, PBX servers
//! (below a core server) and a user's email addresses and phone numbers (below a user).

use super::*;
use crate::server::JsonBody;
use axum::extract::{Path, State as Shared};
use axum::routing::{delete as on_delete, get, post, put, MethodRouter};

/// Where a collection's objects are: from the path parameters before the item id, the parents
/// that must exist and the store scope.
pub trait Place: Fn(&[String]) -> (Vec<Parent>, String) + Clone + Send + Sync + 'static {}

impl<F: Fn(&[String]) -> (Vec<Parent>, String) + Clone + Send + Sync + 'static> Place for F {}

/// Below a core server (`…/{cs}/…`): scope `cs/{cs}/<name>`.
pub fn in_cs(name: &'static str) -> impl Place + Copy {
    move |p: &[String]| {
        let cs = p.first().map_or("", String::as_str);
        (vec![cs_parent(cs)], cs_scope(cs, name))
    }
}

/// Deletes what depends on object `id` of core server `cs` along with it: (tx, cs, id).
pub type Cascade = fn(&mut Tx, &str, &str);

/// A [`Cascade`] for objects nothing depends on.
pub fn nothing_depends(_: &mut Tx, _: &str, _: &str) {}

/// The item id (the last path parameter) and the parameters before it.
fn split_id(mut p: Vec<String>) -> (Vec<String>, String) {
    let id = p.pop().unwrap_or_default();
    (p, id)
}

/// GET of the collection.
pub fn list_in(at: impl Place) -> MethodRouter<App> {
    get(
        move |Shared(app): Shared<App>, Path(p): Path<Vec<String>>| {
            let (parents, sc) = at(&p);
            async move { list(&app, &parents, &sc) }
        },
    )
}

/// POST to the collection: a new object of wire type `T`.
pub fn create_in<T>(at: impl Place, fam: &'static Family, finish: Finish) -> MethodRouter<App>
where
    T: serde::de::DeserializeOwned + Serialize + Send + 'static,
{
    post(
        move |Shared(app): Shared<App>, Path(p): Path<Vec<String>>, JsonBody(b): JsonBody| {
            let (parents, sc) = at(&p);
            async move { create::<T>(&app, &parents, &sc, fam, b, finish).await }
        },
    )
}

/// GET of one object.
pub fn get_in(at: impl Place, fam: &'static Family) -> MethodRouter<App> {
    get(
        move |Shared(app): Shared<App>, Path(p): Path<Vec<String>>| {
            let (p, id) = split_id(p);
            let (parents, sc) = at(&p);
            async move { get_one(&app, &parents, &sc, &id, fam) }
        },
    )
}

/// PUT of one object of wire type `T`.
pub fn update_in<T>(at: impl Place, fam: &'static Family, finish: Finish) -> MethodRouter<App>
where
    T: serde::de::DeserializeOwned + Serialize + Send + 'static,
{
    put(
        move |Shared(app): Shared<App>, Path(p): Path<Vec<String>>, JsonBody(b): JsonBody| {
            let (p, id) = split_id(p);
            let (parents, sc) = at(&p);
            async move { update::<T>(&app, &parents, &sc, &id, fam, b, finish).await }
        },
    )
}

/// DELETE of one object and, through `cascade` (given the first path parameter, the core
/// server), of what depends on it.
pub fn delete_in(at: impl Place, fam: &'static Family, cascade: Cascade) -> MethodRouter<App> {
    on_delete(
        move |Shared(app): Shared<App>, Path(p): Path<Vec<String>>| {
            let (p, id) = split_id(p);
            let (parents, sc) = at(&p);
            let cs = p.first().cloned().unwrap_or_default();
            async move {
                let gone = |tx: &mut Tx, id: &str| cascade(tx, &cs, id);
                delete(&app, &parents, &sc, &id, fam, gone).await
            }
        },
    )
}

/// All five: GET and POST at `collection` (a route path), GET, PUT and DELETE at
/// `collection/{id}`, for objects of wire type `T`.
pub fn routes<T>(
    collection: &str,
    at: impl Place,
    fam: &'static Family,
    finish: Finish,
    cascade: Cascade,
) -> Router<App>
where
    T: serde::de::DeserializeOwned + Serialize + Send + 'static,
{
    Router::new()
        .route(
            &format!("/{collection}"),
            list_in(at.clone()).merge(create_in::<T>(at.clone(), fam, finish)),
        )
        .route(
            &format!("/{collection}/{{id}}"),
            get_in(at.clone(), fam)
                .merge(update_in::<T>(at.clone(), fam, finish))
                .merge(delete_in(at, fam, cascade)),
        )
}
