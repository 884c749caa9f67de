//! The daemon's listeners: the agent's own resources on `[server] agent_listen` (127.0.0.1:58081
//! unless the demo set-up shares the imitation's port), and the Configuration API imitation
//! when `[server] enabled`. Only the imitation is ever a sync target.

use super::resources::AgentApi;
use super::status::AgentState;
use crate::config::Config;
use crate::reconcile;
use std::sync::Arc;

/// The running listeners: the Configuration API imitation (`[server] enabled`) and the
/// agent's own resources, on the imitation's listener or on `agent_listen` (see
/// [`crate::config::AgentListen`]).
pub(super) struct Endpoint {
    api: Option<crate::server::ServerHandle>,
    own: Option<crate::server::ServerHandle>,
}

impl Endpoint {
    pub(super) async fn shutdown(self) {
        for h in [self.own, self.api].into_iter().flatten() {
            h.shutdown().await;
        }
    }
}

pub(super) async fn start_endpoint(
    cfg: &Config,
    api: Arc<dyn AgentApi>,
    state: Arc<AgentState>,
) -> Result<Endpoint, crate::server::ServerError> {
    use crate::config::AgentListen;
    let routes = super::resources::router(api);
    let observer: crate::server::ResponseObserver =
        Arc::new(move |method: &str, status: u16| state.http_request(method, status));
    let shared = cfg.server.agent_endpoint() == AgentListen::WithApi;
    let mut ep = Endpoint {
        api: None,
        own: None,
    };
    if cfg.server.enabled {
        let extra = shared.then(|| routes.clone());
        let live = crate::live::Live::start(cfg)
            .await
            .map_err(|e| crate::server::ServerError::Init(e.to_string()))?;
        let h = crate::server::start_live(&cfg.server, extra, Some(observer.clone()), live).await?;
        if shared {
            tracing::info!(url = %h.base_url(), "agent resources at /isymphony-sync/api/");
        }
        ep.api = Some(h);
    }
    if let AgentListen::Own(addr) = cfg.server.agent_endpoint() {
        let started =
            crate::server::start_agent_only(&cfg.server, addr, routes, Some(observer)).await;
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
/// the Configuration API imitation is a sync target, never the agent's own listener.
pub(super) fn effective(mut cfg: Config, endpoint: Option<&Endpoint>) -> Config {
    if let Some(api) = endpoint.and_then(|ep| ep.api.as_ref()) {
        let base = api.base_url();
        reconcile::source::target_embedded(&mut cfg, &base);
        // Our own passes into our own endpoint never meet its login lockout.
        reconcile::source::trust_embedded(&mut cfg, &base, api.agent_token());
    }
    cfg
}
