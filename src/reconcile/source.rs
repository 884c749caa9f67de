//! The FreePBX side of a pass, and where the pass goes.
//!
//! [`read`] turns `freepbx::read` + `mapping::desired` into a [`SourceInput`]: the desired
//! state, the cxpanel module's ownership rows and its connection settings. [`resolve_target`]
//! picks the iSymphony URL, credentials and core server: `[isymphony]` in the TOML wins, then
//! the cxpanel settings stored in FreePBX, then the built-in defaults.

use super::ownership::ManagedItem;
use crate::config::{Config, DEFAULT_API_PASSWORD, DEFAULT_API_USERNAME};
use crate::freepbx::snapshot::Snapshot;
use crate::model::Desired;
use crate::secret::Secret;

/// The built-in target when neither the TOML nor FreePBX says otherwise.
pub const DEFAULT_URL: &str = "http://localhost:58080/communication_manager/api/resource/";

/// Connection settings the cxpanel module keeps in FreePBX (all optional).
#[derive(Debug, Clone, Default)]
pub struct TargetDefaults {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub ssl: Option<bool>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub core_server: Option<String>,
}

/// Everything a pass needs from FreePBX.
#[derive(Debug, Clone, Default)]
pub struct SourceInput {
    pub desired: Desired,
    pub managed_items: Vec<ManagedItem>,
    pub defaults: TargetDefaults,
    /// The cxpanel module is (or was) installed: its tables or settings exist.
    pub cxpanel: bool,
}

/// The resolved target of a pass.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub username: String,
    pub password: Secret,
    pub core_server: String,
    /// The URL was built from cxpanel's settings in FreePBX's database, not the TOML.
    pub from_database: bool,
    /// Warnings about how the target was chosen (shown with the pass's warnings).
    pub notes: Vec<String>,
}

impl Target {
    /// Key of the state store rows that belong to this target.
    pub fn scope(&self) -> String {
        format!("{}@{}", self.core_server, self.url.trim_end_matches('/'))
    }
}

/// TOML over cxpanel settings over built-in defaults. Credentials written into the URL
/// (`http://user:pass@host/…`) are taken out of it and win over `username`/`password`, so
/// `Target::url`, and everything that shows it or keys on it, never holds a password.
///
/// Credentials go only where the operator said (issue 18 point 8): the TOML's password only
/// to the TOML's URL (a password without a URL is a configuration error), and a URL that
/// cxpanel's settings name gets their login. Those settings may pick https, never take it
/// away once a pass of this process went there (`database_https_seen`).
pub fn resolve_target(cfg: &Config, d: &TargetDefaults) -> Target {
    let i = &cfg.isymphony;
    let mut notes = Vec::new();
    let from_database = i.url.is_none() && d.host.as_deref().is_some_and(|h| !h.trim().is_empty());
    let url = match (&i.url, &d.host) {
        (Some(url), _) => url.clone(),
        (None, Some(host)) if from_database => {
            let mut ssl = d.ssl.unwrap_or(false);
            if !ssl && i.database_https_seen {
                ssl = true;
                notes.push(
                    "cxpanel's settings in FreePBX now ask for plain http (api_use_ssl = 0), \
                     but this agent reached iSymphony over https before: it stays on https \
                     (settings from the database never take https away; set [isymphony] url \
                     to choose)"
                        .to_string(),
                );
            }
            let port = d.port.unwrap_or(if ssl { 55050 } else { 58080 });
            format!(
                "{}://{}:{port}/{}",
                if ssl { "https" } else { "http" },
                host.trim(),
                crate::api::paths::PREFIX
            )
        }
        _ => DEFAULT_URL.to_string(),
    };
    let (url, in_url) = crate::text::split_userinfo(&url);
    let in_url = in_url.filter(|c| !c.username.is_empty());
    // The TOML's password goes to the TOML's URL only.
    let toml_password = i.url.as_ref().and(i.password.clone());
    Target {
        from_database,
        notes,
        url,
        username: in_url
            .as_ref()
            .map(|c| c.username.clone())
            .or_else(|| i.username.clone())
            .or_else(|| d.username.clone().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| DEFAULT_API_USERNAME.to_string()),
        password: in_url
            .and_then(|c| c.password.map(Secret::new))
            .or(toml_password)
            .or_else(|| d.password.clone().filter(|p| !p.is_empty()))
            .unwrap_or_else(|| Secret::new(DEFAULT_API_PASSWORD)),
        core_server: crate::model::core_server_slug(
            i.core_server.as_deref(),
            d.core_server.as_deref(),
        ),
    }
}

/// Point `[isymphony]` at an embedded server started by this process, where the TOML left
/// the URL and credentials unset.
pub fn target_embedded(cfg: &mut Config, base_url: &str) {
    let i = &mut cfg.isymphony;
    if i.url.is_none() {
        i.url = Some(base_url.to_string());
        if i.username.is_none() {
            i.username = Some(cfg.server.username.clone());
        }
        if i.password.is_none() {
            i.password = Some(cfg.server.password.clone());
        }
    }
}

/// Mark this process's requests to the embedded endpoint it started at `base_url` with the
/// endpoint's agent token, so that its login lockout never applies to them. Only when the
/// target (after [`target_embedded`]) is that endpoint: the token never goes to another host.
pub fn trust_embedded(cfg: &mut Config, base_url: &str, token: Secret) {
    let is_ours = cfg
        .isymphony
        .url
        .as_deref()
        .is_some_and(|u| same_endpoint(u, base_url));
    cfg.isymphony.agent_token = is_ours.then_some(token);
}

/// Do two URLs reach the same listener (scheme, port, and host, loopback names counting as
/// one host)?
fn same_endpoint(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (reqwest::Url::parse(a.trim()), reqwest::Url::parse(b.trim())) else {
        return false;
    };
    let local = |u: &reqwest::Url| {
        let host = u.host_str().unwrap_or("");
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    a.scheme() == b.scheme()
        && a.port_or_known_default() == b.port_or_known_default()
        && (a.host_str() == b.host_str() || (local(&a) && local(&b)))
}

/// Read FreePBX (database, files or snapshot) and map it to the desired state. (The pass
/// turns the error into [`super::ReconcileError::FreepbxUnreadable`].)
pub async fn read(cfg: &Config) -> Result<SourceInput, crate::freepbx::FreepbxError> {
    read_keeping(cfg, false).await
}

/// [`read`], keeping the database connection for the next pass (see [`crate::kept`]).
pub async fn read_keeping(
    cfg: &Config,
    keep: bool,
) -> Result<SourceInput, crate::freepbx::FreepbxError> {
    let snap = crate::freepbx::read_keeping(cfg, keep).await?;
    Ok(from_snapshot(&snap, cfg))
}

/// Map a snapshot: desired state, ownership rows, cxpanel connection settings.
pub fn from_snapshot(snap: &Snapshot, cfg: &Config) -> SourceInput {
    let desired = crate::mapping::desired(snap, cfg);
    let managed_items = snap.managed_items.clone();
    // The module's clean_unknown_items default is destructive; only [sync] decides that.
    let defaults = match snap.cx_settings.as_ref().and_then(|c| c.server.as_ref()) {
        Some(s) => TargetDefaults {
            host: Some(s.api_host.clone()).filter(|h| !h.trim().is_empty()),
            port: Some(s.api_port).filter(|p| *p != 0),
            ssl: Some(s.api_use_ssl),
            username: Some(s.api_username.clone()),
            password: Some(s.api_password.clone()),
            core_server: Some(s.name.clone()),
        },
        None => TargetDefaults::default(),
    };
    SourceInput {
        desired,
        managed_items,
        defaults,
        cxpanel: snap.has_table("cxpanel_managed_items") || snap.cx_settings.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_wins_over_cxpanel_over_defaults() {
        let mut cfg = Config::default();
        let t = resolve_target(&cfg, &TargetDefaults::default());
        assert_eq!(t.url, DEFAULT_URL);
        assert_eq!(t.username, "manager");
        assert_eq!(t.core_server, "default");
        let d = TargetDefaults {
            host: Some("pbx.example".into()),
            port: Some(55050),
            ssl: Some(true),
            username: Some("api".into()),
            password: Some(Secret::new("cxpw")),
            core_server: Some("tenant1".into()),
        };
        let t = resolve_target(&cfg, &d);
        assert_eq!(
            t.url,
            "https://pbx.example:55050/communication_manager/api/resource/"
        );
        assert_eq!((t.username.as_str(), t.password.expose()), ("api", "cxpw"));
        assert_eq!(t.core_server, "tenant1");
        cfg.isymphony.core_server = Some("main".into());
        cfg.isymphony.url = Some("http://10.0.0.1:58080/x/".into());
        let t = resolve_target(&cfg, &d);
        assert_eq!(t.core_server, "main");
        assert_eq!(t.url, "http://10.0.0.1:58080/x/");
        assert_eq!(t.username, "api");
    }

    #[test]
    fn the_database_names_neither_the_toml_password_nor_a_weaker_scheme() {
        let d = TargetDefaults {
            host: Some("pbx.example".into()),
            port: Some(58080),
            ssl: Some(false),
            password: Some(Secret::new("cxpw")),
            ..TargetDefaults::default()
        };
        let mut cfg = Config::default();
        // (Config::parse refuses this; the rule holds without it too.)
        cfg.isymphony.password = Some(Secret::new("toml"));
        let t = resolve_target(&cfg, &d);
        assert!(t.from_database && t.url.starts_with("http://pbx.example:58080/"));
        assert_eq!(t.password.expose(), "cxpw");
        assert!(t.notes.is_empty());
        cfg.isymphony.database_https_seen = true;
        let t = resolve_target(&cfg, &d);
        assert!(t.url.starts_with("https://pbx.example:58080/"), "{}", t.url);
        assert!(t.notes[0].contains("stays on https"), "{:?}", t.notes);
        cfg.isymphony.url = Some("https://isy.example/x/".into());
        let t = resolve_target(&cfg, &d);
        assert!(!t.from_database);
        assert_eq!(t.password.expose(), "toml");
        assert!(Config::parse("[isymphony]\npassword = \"x\"\n")
            .unwrap_err()
            .to_string()
            .contains("isymphony.url is not"));
    }

    #[test]
    fn credentials_in_the_url_are_moved_out_of_it() {
        let mut cfg = Config::default();
        cfg.isymphony.url = Some("http://ops:S3cr%40t@10.0.0.1:58080/x/".into());
        cfg.isymphony.password = Some(Secret::new("other"));
        let t = resolve_target(&cfg, &TargetDefaults::default());
        assert_eq!(t.url, "http://10.0.0.1:58080/x/");
        assert_eq!(
            (t.username.as_str(), t.password.expose()),
            ("ops", "S3cr@t")
        );
        assert!(!t.scope().contains("S3cr"), "{}", t.scope());
        // A host from the cxpanel settings with userinfo in it gets the same treatment.
        let d = TargetDefaults {
            host: Some("u:pw-in-host@pbx.example".into()),
            ..TargetDefaults::default()
        };
        let t = resolve_target(&Config::default(), &d);
        assert_eq!(
            t.url,
            "http://pbx.example:58080/communication_manager/api/resource/"
        );
        assert_eq!(t.password.expose(), "pw-in-host");
    }

    #[test]
    fn the_agent_token_goes_only_to_our_own_endpoint() {
        let base = "http://127.0.0.1:41234/communication_manager/api/resource/";
        let tok = Secret::new("t0k");
        let mut cfg = Config::default();
        target_embedded(&mut cfg, base);
        trust_embedded(&mut cfg, base, tok.clone());
        assert_eq!(
            cfg.isymphony.agent_token.as_ref().map(Secret::expose),
            Some("t0k")
        );
        for (url, ours) in [
            (
                "http://localhost:41234/communication_manager/api/resource/",
                true,
            ),
            ("http://[::1]:41234/x/", true),
            (
                "http://127.0.0.1:41235/communication_manager/api/resource/",
                false,
            ),
            (
                "https://127.0.0.1:41234/communication_manager/api/resource/",
                false,
            ),
            (
                "http://pbx.example:41234/communication_manager/api/resource/",
                false,
            ),
        ] {
            let mut cfg = Config::default();
            cfg.isymphony.url = Some(url.into());
            target_embedded(&mut cfg, base);
            trust_embedded(&mut cfg, base, tok.clone());
            assert_eq!(cfg.isymphony.agent_token.is_some(), ours, "{url}");
        }
    }
}
