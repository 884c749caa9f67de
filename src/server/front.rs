//! The one middleware in front of every route: the agent paths' guard (Host, protective
//! headers), the path the rewrite could not map (400), the access check (ACL, credentials,
//! lockout), the announced length and the body read with its deadline, in that order. One layer
//! rather than five: each axum `from_fn` layer cost a boxed future and a clone of the boxed service
//! stack below it per request, a fifth of the endpoint's work on a GET of one object.

use super::auth::{self, Access};
use super::conn::{self, ConnLimits};
use super::error::Error;
use super::guard::{self, Guard};
use super::wire;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// What the checks need, built once per listener set.
pub struct Front {
    pub guard: Guard,
    pub access: Arc<Access>,
    pub limits: ConnLimits,
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn front(
    State(f): State<Arc<Front>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let covered = f.guard.covers(req.uri().path());
    // The guard answers before the access check, so a rebinding page never counts towards a
    // lockout.
    let mut resp = if covered && !f.guard.hosts_allowed(&req) {
        guard::misdirected()
    } else {
        checked(&f, addr, req, next).await
    };
    if covered {
        guard::protect(resp.headers_mut());
    }
    resp
}

/// Everything behind the guard.
async fn checked(f: &Front, addr: SocketAddr, req: Request, next: Next) -> Response {
    if let Some(resp) = wire::bad_path(&req) {
        return resp;
    }
    if let Some(resp) = f.access.admit(addr, &req) {
        return resp;
    }
    auth::json_405(admitted(f.limits, req, next).await)
}

/// A body announced larger than the limit is refused before it is read: DefaultBodyLimit
/// alone would first wait for the bytes (a client announcing 50 MB and sending nothing would
/// hold the request open).
async fn admitted(limits: ConnLimits, req: Request, next: Next) -> Response {
    let limit = u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX);
    let announced = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Error::PayloadTooLarge.into_response();
    }
    match conn::read_body(limits, req).await {
        Ok(req) => next.run(req).await,
        Err(resp) => resp,
    }
}
