//! The daemon's listeners: the agent's own resources on `[server] agent_listen` (127.0.0.1:58081
//! unless the demo set-up shares the embedded endpoint's port), and the embedded endpoint
//! when `[server] enabled`. Only the embedded endpoint is ever a sync target. A restart keeps or binds
//! its sockets before the old listeners stop ([`Sockets`]).

use super::agent_api::AgentApi;
use crate::agent::state::AgentState;
use crate::config::{AgentListen, Config};
use crate::reconcile;
use crate::server::ServerError;
use std::net::SocketAddr;
use std::sync::Arc;

/// The running listeners: the embedded endpoint (`[server] enabled`) and the
/// agent's own resources, on the embedded endpoint's listener or on `agent_listen` (see
/// [`crate::config::AgentListen`]), and a duplicate of each listening socket ([`Sockets`]).
pub(crate) struct Endpoint {
    api: Option<crate::server::ServerHandle>,
    own: Option<crate::server::ServerHandle>,
    sockets: Sockets,
}

impl Endpoint {
    pub(crate) fn sockets(&self) -> &Sockets {
        &self.sockets
    }

    /// Stop the listeners; the sockets they listened on stay open (with whatever connections
    /// wait in their backlog) for as long as the returned [`Sockets`] are kept.
    pub(crate) async fn shutdown(self) -> Sockets {
        for h in [self.own, self.api].into_iter().flatten() {
            h.shutdown().await;
        }
        self.sockets
    }
}

/// The listening sockets of an endpoint, by the address the configuration gives (issue 18
/// point 9). A restart ([`Sockets::prepare`]) reuses the socket of an address that did not
/// change and binds the new ones *before* the running endpoint stops, so the ports are never
/// free for another process to take; a bind that fails leaves the running endpoint alone.
#[derive(Default)]
pub(crate) struct Sockets(Vec<(SocketAddr, std::net::TcpListener)>);

impl Sockets {
    /// The sockets `cfg` listens on: kept from `old` where the configured address is the
    /// same, else newly bound.
    pub(crate) fn prepare(cfg: &Config, old: Option<&Sockets>) -> Result<Sockets, ServerError> {
        let mut out = Sockets::default();
        for (which, addr) in wanted(cfg) {
            let kept = old
                .and_then(|o| o.0.iter().find(|(a, _)| *a == addr))
                .and_then(|(_, l)| l.try_clone().ok());
            let l = match kept {
                Some(l) => l,
                None => crate::server::bind(which, addr)?.0,
            };
            out.0.push((addr, l));
        }
        Ok(out)
    }

    /// Duplicates of all of them (to start the running configuration again).
    pub(crate) fn dup(&self) -> Sockets {
        Sockets(
            self.0
                .iter()
                .filter_map(|(a, l)| l.try_clone().ok().map(|l| (*a, l)))
                .collect(),
        )
    }

    /// A duplicate of the socket for `addr` (the server owns it; this one keeps it open).
    fn take(
        &self,
        which: &'static str,
        addr: SocketAddr,
    ) -> Result<std::net::TcpListener, ServerError> {
        let err = |source| ServerError::Bind {
            which,
            addr,
            source,
        };
        let (_, l) = self
            .0
            .iter()
            .find(|(a, _)| *a == addr)
            .ok_or_else(|| err(std::io::Error::other("no socket prepared for this address")))?;
        l.try_clone().map_err(err)
    }
}

/// The addresses `cfg` listens on, with their `[server]` keys.
fn wanted(cfg: &Config) -> Vec<(&'static str, SocketAddr)> {
    let s = &cfg.server;
    let mut v = Vec::new();
    if s.enabled {
        v.push(("http_listen", s.http_listen));
        if let (Some(a), Some(_)) = (s.https_listen, &s.tls_cert) {
            v.push(("https_listen", a));
        }
    }
    if let AgentListen::Own(a) = s.agent_endpoint() {
        v.push(("agent_listen", a));
    }
    v
}

pub(crate) async fn start_endpoint(
    cfg: &Config,
    api: Arc<dyn AgentApi>,
    state: Arc<AgentState>,
) -> Result<Endpoint, ServerError> {
    let sockets = Sockets::prepare(cfg, None)?;
    start_on(cfg, api, state, sockets).await
}

/// Start the listeners of `cfg` on `sockets` ([`Sockets::prepare`]).
pub(crate) async fn start_on(
    cfg: &Config,
    api: Arc<dyn AgentApi>,
    state: Arc<AgentState>,
    sockets: Sockets,
) -> Result<Endpoint, ServerError> {
    let routes = super::resources::router(api);
    let agent_state = state.clone();
    let observer: crate::server::ResponseObserver =
        Arc::new(move |method: &str, status: u16| state.http_request(method, status));
    let shared = cfg.server.agent_endpoint() == AgentListen::WithApi;
    let mut ep = Endpoint {
        api: None,
        own: None,
        sockets,
    };
    let s = &cfg.server;
    if s.enabled {
        let extra = shared.then(|| routes.clone());
        let live = crate::live::Live::start(cfg)
            .await
            .map_err(|e| crate::server::ServerError::Init(e.to_string()))?;
        if let Some(crate::live::Live {
            backend: crate::live::backend::Backend::Asterisk(h),
            ..
        }) = &live
        {
            // The status page and metrics show the AMI connection.
            agent_state.attach_ami(h.shared().clone());
        }
        let http = ep.sockets.take("http_listen", s.http_listen)?;
        let https = match (s.https_listen, &s.tls_cert) {
            (Some(a), Some(_)) => Some(ep.sockets.take("https_listen", a)?),
            _ => None,
        };
        let h =
            crate::server::start_on(s, extra, Some(observer.clone()), (http, https), live).await?;
        if shared {
            tracing::info!(url = %h.base_url(), "agent resources at /isymphony-sync/api/");
        }
        ep.api = Some(h);
    }
    if let AgentListen::Own(addr) = s.agent_endpoint() {
        let started = ep
            .sockets
            .take("agent_listen", addr)
            .and_then(|l| crate::server::start_agent_only_on(s, l, routes, Some(observer)));
        let h = match started {
            Ok(h) => h,
            Err(e) => {
                ep.shutdown().await;
                return Err(e);
            }
        };
        let a = h.http_addr();
        let host = match a.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = format!("http://{host}:{}{}/", a.port(), super::resources::PREFIX);
        tracing::info!(url = %url, "agent resources at /isymphony-sync/api/");
        ep.own = Some(h);
    }
    Ok(ep)
}

/// Apply the embedded endpoint's address to a config whose `[isymphony] url` is unset. Only
/// the embedded endpoint is a sync target, never the agent's own listener.
pub(crate) fn effective(mut cfg: Config, endpoint: Option<&Endpoint>) -> Config {
    if let Some(api) = endpoint.and_then(|ep| ep.api.as_ref()) {
        let base = api.base_url();
        reconcile::source::target_embedded(&mut cfg, &base);
        // Our own passes into our own endpoint never meet its login lockout.
        reconcile::source::trust_embedded(&mut cfg, &base, api.agent_token());
    }
    cfg
}
