//! The FreePBX cxpanel module beside this agent: where its `modify.php` writes, and whether
//! that is the iSymphony this agent manages (`--check-config`, issue 10 point 10).
//!
//! The module stays installed when the agent takes over: iSymphony checks logins through its
//! `checkAuth` / `checkAuthAdmin` / `getUser` callbacks, which FreePBX answers without a login
//! only for requests from the address the module's API host resolves to, and its `get_config`
//! hook writes the operator-panel dialplan and the AMI user. The same hook then runs
//! `modify.php` on every Apply Config, which keeps the `cxpanel_*` tables in step with FreePBX
//! (before it connects anywhere) and then writes to the API its settings name: scheme, host,
//! port and credentials, core server `name`. The module's administrators, voicemail and
//! recording agents are server-wide, so any core server on the same iSymphony collides.
//!
//! The fix this module checks for: the agent's `[isymphony] url` pinned, and the module's API
//! port set to one where nothing listens (the host stays, so the callbacks keep working).

use crate::api::client::{ApiError, Client, ClientConfig};
use crate::api::types::CoreServer;
use crate::config::Config;
use crate::freepbx::snapshot::{CxSettingsLayout, Snapshot};
use crate::model::Kind;
use crate::reconcile::ownership::object_id;
use crate::reconcile::source::Target;
use crate::secret::Secret;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// cxpanel's HTTP client (CXPest) gives up after 7 s and does not verify certificates.
const CX_TIMEOUT: Duration = Duration::from_secs(7);

/// The API that cxpanel's `modify.php` writes to, from its stored settings.
#[derive(Debug, Clone)]
pub struct CxApi {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub ssl: bool,
    pub username: String,
    pub password: Secret,
    /// The core server slug (`name`).
    pub core_server: String,
    pub layout: CxSettingsLayout,
}

impl CxApi {
    /// None when FreePBX holds no cxpanel server settings (the module is not installed).
    pub fn from_snapshot(snap: &Snapshot) -> Option<CxApi> {
        let cx = snap.cx_settings.as_ref()?;
        let s = cx.server.as_ref()?;
        let host = s.api_host.trim().to_string();
        let url = format!(
            "{}://{}:{}/{}",
            if s.api_use_ssl { "https" } else { "http" },
            host,
            s.api_port,
            crate::api::paths::PREFIX
        );
        Some(CxApi {
            url,
            host,
            port: s.api_port,
            ssl: s.api_use_ssl,
            username: s.api_username.clone(),
            password: s.api_password.clone(),
            core_server: s.name.clone(),
            layout: cx.layout,
        })
    }

    /// Where an administrator changes the API port: the GUI field and the stored setting.
    pub fn port_setting(&self) -> String {
        let stored = match self.layout {
            CxSettingsLayout::Kvstore => {
                "settings_server.api_port in kvstore_FreePBX_modules_Cxpanel"
            }
            CxSettingsLayout::Tables => "cxpanel_server.api_port",
        };
        format!(
            "Admin > iSymphonyV3 > Server API Connection Settings > Port ({stored}, now {})",
            self.port
        )
    }

    /// What to do about a conflict, in one sentence.
    fn fix(&self) -> String {
        format!(
            "in FreePBX set {} to a port where nothing listens, e.g. 1, and Apply Config; keep \
             Host ({}): FreePBX accepts iSymphony's login callbacks only from that address",
            self.port_setting(),
            self.host
        )
    }
}

/// Whether the module is present but disabled (its hooks, modify.php included, do not run).
pub fn module_disabled(snap: &Snapshot) -> bool {
    snap.modules
        .iter()
        .any(|m| m.modulename == "cxpanel" && !m.enabled)
}

/// How cxpanel's sync relates to this agent's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The module is disabled: modify.php does not run.
    Disabled,
    /// modify.php cannot write (nothing answers, or its credentials are refused).
    CannotWrite(String),
    /// As `CannotWrite`, but the agent follows those settings too (`[isymphony] url` unset).
    FollowsNowhere(String),
    /// modify.php writes to another iSymphony server.
    Elsewhere,
    /// modify.php writes to the iSymphony this agent manages.
    Conflict {
        /// The agent's `[isymphony] url` is unset: it follows the module's settings.
        follows: bool,
        /// Same core server slug too (else: another core server, same server-wide objects).
        same_core_server: bool,
    },
}

/// Work out where modify.php writes and compare it with the agent's `target` (resolved as a
/// pass resolves it; `cfg.isymphony.url` unset means the agent follows the module's settings).
pub async fn assess(cfg: &Config, snap: &Snapshot, cx: &CxApi, target: &Target) -> Verdict {
    if module_disabled(snap) {
        return Verdict::Disabled;
    }
    let same_core_server = cx.core_server == target.core_server;
    let cx_list = match cx_client(cfg, cx) {
        Ok(c) => list_core_servers(&c).await,
        Err(e) => Err(e),
    };
    // No URL of its own: the agent's target is built from these very settings.
    let follows = cfg.isymphony.url.is_none();
    let cx_list = match cx_list {
        Ok(_) if follows => {
            return Verdict::Conflict {
                follows,
                same_core_server,
            }
        }
        Ok(l) => l,
        Err(e) if follows => return Verdict::FollowsNowhere(cannot_write(&e)),
        Err(e) => return Verdict::CannotWrite(cannot_write(&e)),
    };
    let agent_list = match crate::reconcile::make_client(cfg, target) {
        Ok(c) => list_core_servers(&c).await.ok(),
        Err(_) => None,
    };
    // The same server: our core server (by id and slug) is in the module's list, or both
    // URLs reach the same listening address. An id the agent itself gives (UUID v5 of the
    // slug) proves nothing: every server the agent filled has it.
    let own_id = object_id(&target.core_server, Kind::CoreServer, &target.core_server);
    let shares_ours = agent_list.as_ref().is_some_and(|ours| {
        ours.iter()
            .filter(|c| c.slug == target.core_server)
            .filter(|c| {
                c.id.as_deref()
                    .is_some_and(|i| !i.eq_ignore_ascii_case(&own_id))
            })
            .any(|c| cx_list.iter().any(|x| x.id == c.id && x.slug == c.slug))
    });
    if shares_ours || same_address(&cx.url, &target.url).await {
        Verdict::Conflict {
            follows: false,
            same_core_server,
        }
    } else {
        Verdict::Elsewhere
    }
}

/// The `--check-config` line for a verdict: (is it a warning, the text).
pub fn describe(v: &Verdict, cx: &CxApi, target: &Target, config: &str) -> (bool, String) {
    let run = "modify.php (run by the cxpanel module on every Apply Config)";
    match v {
        Verdict::Disabled => (
            false,
            "the cxpanel module is disabled: its modify.php does not run (nor do its login \
             callbacks and dialplan)"
                .to_string(),
        ),
        Verdict::CannotWrite(why) => (
            false,
            format!(
                "{run} cannot write to iSymphony: {} {why}; its login callbacks still answer \
                 requests from {}",
                cx.url, cx.host
            ),
        ),
        Verdict::FollowsNowhere(why) => (
            true,
            format!(
                "{run} cannot write to iSymphony: {} {why}; but [isymphony] url is unset, so \
                 this agent follows the same settings: set [isymphony] url (and core_server) in \
                 {config} to the iSymphony this agent should manage",
                cx.url
            ),
        ),
        Verdict::Elsewhere => (
            false,
            format!(
                "{run} writes to {} (core server '{}'), not to the iSymphony this agent manages",
                cx.url, cx.core_server
            ),
        ),
        Verdict::Conflict {
            follows: true,
            same_core_server,
        } => (
            true,
            format!(
                "{run} writes to {} (core server '{}'){}, and this agent follows the module's \
                 API settings because [isymphony] url is unset: first set [isymphony] url = \
                 \"{}\" in {config}, then {}",
                cx.url,
                cx.core_server,
                if *same_core_server {
                    ", the core server this agent manages"
                } else {
                    ""
                },
                target.url,
                cx.fix()
            ),
        ),
        Verdict::Conflict {
            follows: false,
            same_core_server: true,
        } => (
            true,
            format!(
                "{run} writes to {} core server '{}', the one this agent manages: {}",
                cx.url,
                cx.core_server,
                cx.fix()
            ),
        ),
        Verdict::Conflict {
            follows: false,
            same_core_server: false,
        } => (
            true,
            format!(
                "{run} writes to core server '{}' on the iSymphony this agent manages (at {}), \
                 and with it the server-wide administrators and voicemail/recording agents this \
                 agent also manages: {}",
                cx.core_server,
                cx.url,
                cx.fix()
            ),
        ),
    }
}

/// A client that behaves like cxpanel's: its credentials, one attempt, 7 s, no certificate
/// check.
fn cx_client(cfg: &Config, cx: &CxApi) -> Result<Client, ApiError> {
    let mut cc = ClientConfig::new(&cx.url, &cx.username, cx.password.clone());
    cc.timeout = cfg.isymphony.timeout.unwrap_or(CX_TIMEOUT).min(CX_TIMEOUT);
    cc.max_attempts = 1;
    cc.tls_verify = !cx.ssl;
    cc.pool_size = 1;
    Client::new(&cc)
}

async fn list_core_servers(client: &Client) -> Result<Vec<CoreServer>, ApiError> {
    client.get(crate::api::paths::core_servers()).await
}

fn cannot_write(e: &ApiError) -> String {
    match e.status() {
        Some(s @ (401 | 403)) => format!("refuses the module's API credentials (HTTP {s})"),
        Some(s) => format!("answers HTTP {s}"),
        None => format!("does not answer ({e})"),
    }
}

/// Both URLs reach the same listening socket: the same port, and an address in common or
/// both on this host.
async fn same_address(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (host_port(a), host_port(b)) else {
        return false;
    };
    if a.1 != b.1 {
        return false;
    }
    let (ia, ib) = (resolve(&a).await, resolve(&b).await);
    if ia.is_empty() || ib.is_empty() {
        return false;
    }
    !ia.is_disjoint(&ib) || (ia.iter().all(is_local) && ib.iter().all(is_local))
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u
        .host_str()?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    Some((host, u.port_or_known_default()?))
}

async fn resolve(hp: &(String, u16)) -> BTreeSet<IpAddr> {
    match tokio::net::lookup_host((hp.0.as_str(), hp.1)).await {
        Ok(addrs) => addrs.map(|a: SocketAddr| a.ip()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// An address of this host: loopback, unspecified, or one a socket can be bound to.
fn is_local(ip: &IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || std::net::UdpSocket::bind(SocketAddr::new(*ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_aliases_are_the_same_address() {
        assert!(same_address("http://localhost:58080/x/", "http://127.0.0.1:58080/y/").await);
        assert!(!same_address("http://localhost:58080/x/", "http://127.0.0.1:58081/x/").await);
        // A documentation address (TEST-NET-1) is not on this host.
        assert!(!same_address("http://192.0.2.1:58080/", "http://127.0.0.1:58080/").await);
        assert!(same_address("http://192.0.2.1:58080/", "http://192.0.2.1:58080/z").await);
    }
}
