//! The embedded, spec-conformant iSymphony Configuration API endpoint (docs/README-server.md).
//!
//! [`start`] binds the HTTP (and, with a certificate, HTTPS) listener, opens the durable store
//! in `data_dir` and serves the resource tree under both `communication_manager/api/resource/`
//! and `communication_manager/rest/config/`. Before routing, paths are normalised (prefix,
//! trailing slash, `getBySlug`/`getByName` look-ups, the `emailAdresses` spelling, the old
//! `core/…/managingUser` parent), so each resource router only knows one canonical form. The
//! access check ([`auth`]) guards every route, including the agent's own routes merged in by the
//! caller or served alone on a listener of their own ([`start_agent_only`]).
//!
//! Modules: [`app`] (the handlers' shared state), [`resources`] (the resource tree), [`store`]
//! (durable, an append-only log), [`auth`] and [`lockout`] (the access check), [`guard`] (the agent's paths:
//! Host check, protective headers), [`conn`] (connection limits), [`wire`] (HTTP-level refusals),
//! [`error`] (the one error type), [`faults`] (fault injection, a test facility), [`front`]
//! (the one middleware in front of every route).

pub(crate) mod app;
pub mod auth;
pub mod conn;
pub mod error;
pub mod faults;
pub mod front;
pub mod guard;
pub mod lockout;
pub mod resources;
mod rewrite;
pub mod store;
pub mod wire;

use crate::config::{ServerConfig, DEFAULT_API_PASSWORD};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::Router;
use error::Error;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use store::Store;

/// Canonical prefix of every resource path; the prefix most documentation pages use
/// ([`ALT_PREFIX`]) is rewritten to it. Both are the client's ([`crate::api::paths`]).
pub use crate::api::paths::{ALT_ROOT as ALT_PREFIX, API_ROOT as API_PREFIX};
pub use app::{decode_json_body, App, AppState};

/// Requests served so far, by method (all of them, refused ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub get: u64,
    pub post: u64,
    pub put: u64,
    pub delete: u64,
    pub other: u64,
}

impl RequestStats {
    pub fn total(&self) -> u64 {
        self.get + self.post + self.put + self.delete + self.other
    }
}

/// Why the endpoint could not start, phrased for an administrator.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} ({which}): {source}{hint}", hint = if source.kind() == std::io::ErrorKind::AddrInUse { format!(" (address already in use: another process listens there; change server.{which})") } else { String::new() })]
    Bind {
        which: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot load the TLS certificate {cert} / key {key}: {source}")]
    Tls {
        cert: String,
        key: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot initialise the store: {0}")]
    Init(String),
}

/// A running endpoint. Dropping it leaves the server running; call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    http: SocketAddr,
    https: Option<SocketAddr>,
    handle: axum_server::Handle,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// None: only the agent's own resources ([`start_agent_only`]).
    app: Option<App>,
    access: Arc<auth::Access>,
    faults: Option<Arc<faults::Faults>>,
    tracker: Arc<conn::Tracker>,
    /// The Live API's backend, when `rest/live/` is served.
    live: Option<Arc<crate::live::backend::Backend>>,
}

impl ServerHandle {
    /// The bound HTTP address (the real port when `http_listen` used port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
    }
    /// `http://HOST:PORT/communication_manager/api/resource/`.
    pub fn base_url(&self) -> String {
        let host = if self.http.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            match self.http {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        };
        format!("http://{host}:{}{API_PREFIX}/", self.http.port())
    }
    pub fn stats(&self) -> RequestStats {
        self.access.stats()
    }
    /// Connections open now and closed by the limits so far.
    pub fn conn_stats(&self) -> conn::ConnStats {
        self.tracker.stats()
    }
    /// The token this process's own API client sends so that the login lockout never applies
    /// to it (see [`auth::AGENT_HEADER`]).
    pub fn agent_token(&self) -> crate::secret::Secret {
        self.access.agent_token()
    }
    /// Faults injected so far (None: `[server.faults]` is not configured).
    pub fn fault_stats(&self) -> Option<faults::FaultStats> {
        self.faults.as_ref().map(|f| f.stats())
    }
    /// The Live API's backend (None: `[live] backend = "off"`): its facts, for status pages
    /// and tests.
    pub fn live(&self) -> Option<&Arc<crate::live::backend::Backend>> {
        self.live.as_ref()
    }
    /// Stop accepting, let running requests finish (up to 5 s), then close the store and stop
    /// the Live API's backend.
    pub async fn shutdown(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        for t in self.tasks {
            match t.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "listener ended with an error"),
                Err(e) => tracing::warn!(error = %e, "listener task failed"),
                Ok(Ok(())) => {}
            }
        }
        if let Some(app) = self.app {
            app.store.close().await;
            tracing::info!("embedded endpoint stopped");
        }
        if let Some(Ok(backend)) = self.live.map(Arc::try_unwrap) {
            backend.shutdown().await;
        }
    }
}

/// Bind one listening socket (non-blocking, as the server needs it): `which` names the
/// `[server]` key in errors. A caller that binds ahead of [`start_on`] or
/// [`start_agent_only_on`] can keep a duplicate ([`std::net::TcpListener::try_clone`]) so
/// that a restart on the same address never leaves the port free.
pub fn bind(
    which: &'static str,
    addr: SocketAddr,
) -> Result<(std::net::TcpListener, SocketAddr), ServerError> {
    let err = |source| ServerError::Bind {
        which,
        addr,
        source,
    };
    let l = std::net::TcpListener::bind(addr).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    let bound = l.local_addr().map_err(err)?;
    Ok((l, bound))
}

/// Start the endpoint described by `cfg`. `extra_routes` (the agent's `/isymphony-sync/…`
/// routes) are served on the same listeners behind the same ACL and credentials.
pub async fn start(
    cfg: &ServerConfig,
    extra_routes: Option<Router>,
) -> Result<ServerHandle, ServerError> {
    start_observed(cfg, extra_routes, None).await
}

pub use crate::api::counts::ResponseObserver;

/// [`start`], reporting every answered request (including 401/403 from the access check) to
/// `observer`.
pub async fn start_observed(
    cfg: &ServerConfig,
    extra_routes: Option<Router>,
    observer: Option<ResponseObserver>,
) -> Result<ServerHandle, ServerError> {
    start_live(cfg, extra_routes, observer, None).await
}

/// [`start_observed`], also serving the Live API (`communication_manager/rest/live/`) of
/// `live` behind the same access check; None: no Live API (404 there).
pub async fn start_live(
    cfg: &ServerConfig,
    extra_routes: Option<Router>,
    observer: Option<ResponseObserver>,
    live: Option<crate::live::Live>,
) -> Result<ServerHandle, ServerError> {
    let http = bind("http_listen", cfg.http_listen)?.0;
    let https = match (cfg.https_listen, &cfg.tls_cert) {
        (Some(addr), Some(_)) => Some(bind("https_listen", addr)?.0),
        _ => None,
    };
    start_on(cfg, extra_routes, observer, (http, https), live).await
}

/// [`start_live`] on sockets bound ahead ([`bind`]) for `http_listen` and, with TLS,
/// `https_listen`.
pub async fn start_on(
    cfg: &ServerConfig,
    extra_routes: Option<Router>,
    observer: Option<ResponseObserver>,
    (http, https): (std::net::TcpListener, Option<std::net::TcpListener>),
    live: Option<crate::live::Live>,
) -> Result<ServerHandle, ServerError> {
    // rustls needs a process-wide crypto provider; a second install (tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let addr = |l: &std::net::TcpListener, which| {
        l.local_addr().map_err(|source| ServerError::Bind {
            which,
            addr: cfg.http_listen,
            source,
        })
    };
    let bound = addr(&http, "http_listen")?;
    let http = (http, bound);
    let tls = match https {
        Some(l) => tls_listener(cfg, l).await?,
        None => None,
    };

    // Loading the store is blocking file I/O; keep it off the async workers.
    let data_dir = cfg.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await
        .map_err(|e| ServerError::Init(e.to_string()))??;
    let app: App = Arc::new(AppState {
        store,
        licensed_full_users: cfg.licensed_full_users,
    });
    resources::agents::seed(&app, &cfg.voicemail_agents, &cfg.recording_agents)
        .await
        .map_err(|e| ServerError::Init(e.to_string()))?;

    let exposed = !cfg.http_listen.ip().is_loopback()
        || cfg.https_listen.is_some_and(|a| !a.ip().is_loopback());
    warn_default_password(cfg, exposed);

    let mut router = Router::new().nest(API_PREFIX, resources::router().with_state(app.clone()));
    if let Some(extra) = extra_routes {
        router = router.merge(extra);
    }
    let live = match live {
        Some(l) => {
            let (routes, backend) = crate::live::routes::serve(app.clone(), l);
            router = router.nest(crate::live::routes::LIVE_ROOT, routes);
            Some(backend)
        }
        None => None,
    };
    let faults = cfg.faults.as_ref().map(|f| {
        tracing::warn!(
            "[server.faults] is set: the endpoint injects faults on purpose (a test facility; \
             never use it in production)"
        );
        Arc::new(faults::Faults::new(f))
    });
    let mut handle = serve_router(cfg, router, Some(app), faults, observer, http, tls);
    handle.live = live;
    tracing::info!(
        http = %handle.http,
        https = ?handle.https,
        data_dir = %cfg.data_dir.display(),
        "embedded iSymphony Configuration API endpoint listening"
    );
    Ok(handle)
}

/// Serve only `routes` (the agent's own resources) on plain HTTP at `addr`, behind the same
/// access check (ACL, credentials, lockout), connection limits and body limit as the endpoint, with
/// no Configuration API and no store: the listener of a service that syncs into a real iSymphony.
pub async fn start_agent_only(
    cfg: &ServerConfig,
    addr: SocketAddr,
    routes: Router,
    observer: Option<ResponseObserver>,
) -> Result<ServerHandle, ServerError> {
    let (l, _) = bind("agent_listen", addr)?;
    start_agent_only_on(cfg, l, routes, observer)
}

/// [`start_agent_only`] on a socket bound ahead ([`bind`]).
pub fn start_agent_only_on(
    cfg: &ServerConfig,
    listener: std::net::TcpListener,
    routes: Router,
    observer: Option<ResponseObserver>,
) -> Result<ServerHandle, ServerError> {
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        which: "agent_listen",
        addr: cfg
            .agent_listen
            .unwrap_or(crate::config::DEFAULT_AGENT_LISTEN),
        source,
    })?;
    warn_default_password(cfg, !addr.ip().is_loopback());
    Ok(serve_router(
        cfg,
        routes,
        None,
        None,
        observer,
        (listener, addr),
        None,
    ))
}

fn warn_default_password(cfg: &ServerConfig, exposed: bool) {
    if exposed && cfg.password.expose() == DEFAULT_API_PASSWORD {
        tracing::warn!(
            "server.password is the factory default and the endpoint listens on a non-loopback \
             address; set [server] password"
        );
    }
}

/// Put the access check, the limits, faults and the observer around `router` and serve it on the
/// listeners. `app` is the Configuration API's state (None: only the agent's resources).
fn serve_router(
    cfg: &ServerConfig,
    router: Router,
    app: Option<App>,
    faults: Option<Arc<faults::Faults>>,
    observer: Option<ResponseObserver>,
    (http_listener, http): (std::net::TcpListener, SocketAddr),
    tls: Option<Tls>,
) -> ServerHandle {
    let access = Arc::new(
        auth::Access::new(&cfg.realm, &cfg.acl, &cfg.username, cfg.password.expose())
            .with_lockout(cfg.auth_fail_limit, cfg.auth_fail_window, cfg.auth_block)
            .with_scrape_token(cfg.metrics_token.as_ref()),
    );
    let listeners: Vec<SocketAddr> = std::iter::once(http)
        .chain(tls.as_ref().map(|t| t.1))
        .collect();
    // On the agent's own listener every path is the agent's.
    let host_guard = guard::Guard::new(&listeners, &cfg.allowed_hosts, app.is_none());
    let mut router = router.fallback(|| async { Error::not_found("No such resource.") });
    if let Some(f) = &faults {
        // Behind the access check: refused requests are answered normally.
        router = router.layer(axum::middleware::from_fn_with_state(
            f.clone(),
            faults::inject,
        ));
    }
    let limits = conn::ConnLimits::from_config(cfg);
    let router = outer_layers(router, cfg, limits, &access, host_guard, observer);
    let make_for = |tls: bool| -> Make {
        let app2 = app.clone();
        let svc = Svc::new(
            tower::ServiceBuilder::new()
                .map_request(move |mut req: Request<hyper::body::Incoming>| {
                    if tls {
                        req.extensions_mut().insert(OverTls);
                    }
                    rewrite::rewrite(app2.as_ref(), req)
                })
                .service(router.clone()),
        );
        axum::ServiceExt::<Request<hyper::body::Incoming>>::into_make_service_with_connect_info::<
            SocketAddr,
        >(svc)
    };
    let make = (make_for(false), make_for(true));

    conn::check_fd_limit(limits.max_connections);
    let tracker = conn::Tracker::new(limits);
    let handle = axum_server::Handle::new();
    let (tasks, https) = serve(
        http_listener,
        tls,
        &handle,
        make,
        &access,
        &tracker,
        faults.is_some(),
    );
    ServerHandle {
        http,
        https,
        handle,
        tasks,
        app,
        access,
        faults,
        tracker,
        live: None,
    }
}

/// The HTTPS listener `l` and its certificate, when `https_listen` is set.
async fn tls_listener(
    cfg: &ServerConfig,
    l: std::net::TcpListener,
) -> Result<Option<Tls>, ServerError> {
    if let (Some(addr), Some(cert), Some(key)) = (cfg.https_listen, &cfg.tls_cert, &cfg.tls_key) {
        let rustls_cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
            .await
            .map_err(|source| ServerError::Tls {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
                source,
            })?;
        let bound = l.local_addr().map_err(|source| ServerError::Bind {
            which: "https_listen",
            addr,
            source,
        })?;
        return Ok(Some((l, bound, rustls_cfg)));
    }
    Ok(None)
}

/// The layers every request passes before its handler: the observer (outermost), the one
/// front middleware ([`front`]: guard, bad path, access check, announced length, body read) and the
/// body limit.
fn outer_layers(
    router: Router,
    cfg: &ServerConfig,
    limits: conn::ConnLimits,
    access: &Arc<auth::Access>,
    host_guard: guard::Guard,
    observer: Option<ResponseObserver>,
) -> Router {
    let front = Arc::new(front::Front {
        guard: host_guard,
        access: access.clone(),
        limits,
    });
    let router = router
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(front, front::front));
    match observer {
        Some(obs) => observe(router, obs),
        None => router,
    }
}

/// `router` with every answered request (whatever layer answered it) reported to `obs`.
pub fn observe(router: Router, obs: ResponseObserver) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: axum::middleware::Next| {
            let obs = obs.clone();
            async move {
                // A label from a fixed set: the method is the client's choice (issue 18).
                let method = crate::api::counts::method_label(req.method().as_str());
                let resp = next.run(req).await;
                obs(method, resp.status().as_u16());
                resp
            }
        },
    ))
}

type Tls = (
    std::net::TcpListener,
    SocketAddr,
    axum_server::tls_rustls::RustlsConfig,
);

/// The whole endpoint as one nameable service (so [`serve`] needs no generics).
type Svc = tower::util::BoxCloneSyncService<
    Request<hyper::body::Incoming>,
    axum::response::Response,
    std::convert::Infallible,
>;
type Make = axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Svc, SocketAddr>;

/// Set on a request that came over the HTTPS listener (its scheme, for same-origin checks).
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Serve the listeners, every connection through the ACL and the limits ([`conn`]) and, with
/// faults, through [`faults::FaultAcceptor`] (drop_after_apply needs to kill connections).
fn serve(
    http: std::net::TcpListener,
    tls: Option<Tls>,
    handle: &axum_server::Handle,
    (make, make_tls): (Make, Make),
    access: &Arc<auth::Access>,
    tracker: &Arc<conn::Tracker>,
    faults: bool,
) -> (
    Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    Option<SocketAddr>,
) {
    use axum_server::accept::DefaultAcceptor;
    let mut tasks = Vec::new();
    let mut plain = axum_server::from_tcp(http).handle(handle.clone());
    wire::limit_head(&mut plain);
    tasks.push(if faults {
        tokio::spawn(
            plain
                .acceptor(conn::ConnAcceptor::new(
                    access,
                    tracker,
                    faults::FaultAcceptor,
                ))
                .serve(make),
        )
    } else {
        tokio::spawn(
            plain
                .acceptor(conn::ConnAcceptor::new(access, tracker, DefaultAcceptor))
                .serve(make),
        )
    });
    let mut https = None;
    if let Some((l, bound, rustls_cfg)) = tls {
        let mut secure = axum_server::from_tcp_rustls(l, rustls_cfg).handle(handle.clone());
        wire::limit_head(&mut secure);
        tasks.push(if faults {
            tokio::spawn(
                secure
                    .map(|a| {
                        a.acceptor(conn::ConnAcceptor::new(
                            access,
                            tracker,
                            faults::FaultAcceptor,
                        ))
                    })
                    .serve(make_tls),
            )
        } else {
            tokio::spawn(
                secure
                    .map(|a| a.acceptor(conn::ConnAcceptor::new(access, tracker, DefaultAcceptor)))
                    .serve(make_tls),
            )
        });
        https = Some(bound);
    }
    (tasks, https)
}

/// A JSON request body: 413 over the limit, 412 when absent or malformed.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                // Broken framing (e.g. a chunk size that overflows): the HTTP layer's error.
                Error::BadRequest(format!("Cannot read the request body: {}", r.body_text()))
            }
        })?;
        decode_json_body(&bytes).map(JsonBody)
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite::{pct_decode, pct_encode};

    #[test]
    fn percent_coding_round_trips() {
        assert_eq!(pct_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(pct_decode("100%"), "100%");
        assert_eq!(pct_encode("a b/c"), "a%20b%2Fc");
    }
}
