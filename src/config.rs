//! The agent's TOML configuration: sections `[server]`, `[freepbx]`, `[isymphony]`, `[sync]`,
//! `[live]` (in [`live`]).
//!
//! Every section has defaults, so an empty file is valid. Unknown keys and wrong types are
//! errors that name the key and the file (serde's `deny_unknown_fields` plus the path). Secrets
//! are [`Secret`]s, so printing a `Config` never shows a password.

mod faults;
mod live;
mod parse;

pub use faults::{FaultRule, FaultsConfig};
pub use live::{LiveActions, LiveBackend, LiveConfig};
pub use parse::{parse_duration, DurationError, ParseError};

use parse::{de_duration, de_opt_duration};

use crate::secret::Secret;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agent looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/isymphony-sync/config.toml";
/// The iSymphony factory password: the demo's; the service refuses it outside the demo set-up
/// (see [`ServerConfig::start_refusal`]).
pub const DEFAULT_API_PASSWORD: &str = "manag3rpa55word";
/// Where the Debian package's postinst writes the generated password of the agent's port.
pub const PACKAGED_PASSWORD_FILE: &str = "/etc/isymphony-sync/agent-password";
/// The iSymphony factory user name.
pub const DEFAULT_API_USERNAME: &str = "manager";

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub freepbx: FreepbxConfig,
    pub isymphony: IsymphonyConfig,
    pub sync: SyncConfig,
    pub live: LiveConfig,
    /// Where this configuration was read from (None: built-in defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Where the service serves its own resources when neither `[server] agent_listen` nor the
/// embedded endpoint says otherwise: next to iSymphony's own ports (58080 HTTP,
/// 55050 HTTPS), never on them.
pub const DEFAULT_AGENT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 58081);

/// `[server]`: this process's HTTP side: the service's own resources (status, plan, sync,
/// metrics) and, when `enabled`, the embedded endpoint (the iSymphony REST API).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Serve the embedded endpoint (demo, tests, `--sync-now` without iSymphony).
    /// Off unless asked for: on a FreePBX host iSymphony itself owns 58080 and 55050.
    pub enabled: bool,
    /// Where the service (daemon mode) serves its own resources; see [`AgentListen`].
    pub agent_listen: Option<SocketAddr>,
    pub http_listen: SocketAddr,
    pub https_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    /// A file whose first line is the password (the package generates one at install); it
    /// wins over `password`. Read when the configuration is loaded.
    pub password_file: Option<PathBuf>,
    /// Set on loading: why `password_file` could not be read. The password is then a random
    /// one nobody knows, and the service refuses to start.
    #[serde(skip)]
    pub password_file_error: Option<String>,
    pub realm: String,
    pub acl: Vec<IpNet>,
    pub data_dir: PathBuf,
    /// Largest accepted request body in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Voicemail/recording agents the server pretends are connected.
    pub voicemail_agents: Vec<String>,
    pub recording_agents: Vec<String>,
    /// After this many failed authentications from one address within `auth_fail_window`,
    /// that address gets 403 without a credential check for `auth_block`.
    pub auth_fail_limit: u32,
    #[serde(deserialize_with = "de_duration")]
    pub auth_fail_window: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub auth_block: Duration,
    /// Full-user licences the embedded endpoint grants per core server (absent: unlimited).
    /// Past it, a user write with `full = true` is refused with 403, as iSymphony refuses a
    /// change for licensing (a way to see how the agent meets a licence limit).
    pub licensed_full_users: Option<u32>,
    /// Most client connections open at once (HTTP and HTTPS together). When full, the
    /// connection idle longest is closed to make room; keep it well under the open-file limit.
    pub max_connections: usize,
    /// A request's headers must arrive within this, counted from the connection's start (its
    /// first request) or from their first byte (later requests).
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// A connection with no request running and nothing received or sent for this long after
    /// its last request is closed (idle keep-alive connections, stalled readers).
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// A request body must arrive within this (else 408 and the connection is closed).
    #[serde(deserialize_with = "de_duration")]
    pub body_read_timeout: Duration,
    /// Host names (besides the listener's address and `localhost`) under which the agent's
    /// own pages and resources answer; any other `Host` gets 421 (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// A bearer token that reads `/isymphony-sync/api/metrics` (and nothing else) without the
    /// realm's credentials and past any login lockout: Prometheus' `authorization` setting.
    pub metrics_token: Option<Secret>,
    /// TEST FACILITY: fault injection, off unless a `[server.faults]` section is present.
    pub faults: Option<FaultsConfig>,
}

/// Where the service's own resources are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentListen {
    /// On the embedded endpoint's listeners (`enabled`, and `agent_listen` unset or
    /// equal to `http_listen`): the demo set-up, one port for everything.
    WithApi,
    /// On a listener of their own.
    Own(SocketAddr),
}

impl ServerConfig {
    /// Read `password_file` into `password` (see [`ServerConfig::password_file_error`]).
    fn read_password_file(&mut self) {
        let Some(path) = &self.password_file else {
            return;
        };
        let text = std::fs::read_to_string(path);
        let line = text.as_ref().map(|t| t.lines().next().unwrap_or("").trim());
        match line {
            Ok(pw) if !pw.is_empty() => self.password = Secret::new(pw),
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "its first line is empty".to_string(),
                };
                self.password_file_error = Some(format!(
                    "cannot read server.password_file {}: {why}",
                    path.display()
                ));
                self.password = Secret::new(uuid::Uuid::new_v4().simple().to_string());
            }
        }
    }

    /// Why the service must not start with these credentials (issue 18 point 7): a password
    /// file that cannot be read, or the documented factory password outside the demo set-up
    /// (the demo runs the embedded endpoint: `enabled = true`).
    pub fn start_refusal(&self) -> Option<String> {
        if let Some(e) = &self.password_file_error {
            return Some(format!(
                "{e}; the service does not start without its password (the package writes \
                 that file at install: reinstall it, or write one random line to the file, \
                 owned root:isymphony-sync, mode 0640)"
            ));
        }
        if self.enabled || self.password.expose() != DEFAULT_API_PASSWORD {
            return None;
        }
        Some(format!(
            "[server] password is iSymphony's documented factory default, and this is not the \
             demo set-up ([server] enabled = false): anyone who can reach the agent's port \
             could use it. Set a password of your own: password_file = \
             \"{PACKAGED_PASSWORD_FILE}\" (the package generates that file at install; to \
             make one: head -c 24 /dev/urandom | base64 > FILE, then chown \
             root:isymphony-sync FILE and chmod 0640 FILE), or password = \"...\" in [server]"
        ))
    }

    /// `agent_listen` when set (shared with the embedded endpoint when it equals `http_listen`);
    /// unset: with the embedded endpoint when it is enabled, else [`DEFAULT_AGENT_LISTEN`].
    pub fn agent_endpoint(&self) -> AgentListen {
        match self.agent_listen {
            Some(a) if !(self.enabled && a == self.http_listen) => AgentListen::Own(a),
            None if !self.enabled => AgentListen::Own(DEFAULT_AGENT_LISTEN),
            _ => AgentListen::WithApi,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            enabled: false,
            agent_listen: None,
            http_listen: SocketAddr::from(([127, 0, 0, 1], 58080)),
            https_listen: None,
            tls_cert: None,
            tls_key: None,
            username: DEFAULT_API_USERNAME.into(),
            password: Secret::new(DEFAULT_API_PASSWORD),
            password_file: None,
            password_file_error: None,
            realm: "iSymphony".into(),
            acl: vec![
                "127.0.0.0/8".parse().expect("valid CIDR"),
                "::1/128".parse().expect("valid CIDR"),
            ],
            data_dir: PathBuf::from("/var/lib/isymphony-sync"),
            max_body_bytes: 1024 * 1024,
            voicemail_agents: vec!["local-vm".into()],
            recording_agents: vec!["local-rec".into()],
            auth_fail_limit: 10,
            auth_fail_window: Duration::from_secs(60),
            auth_block: Duration::from_secs(60),
            licensed_full_users: None,
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            metrics_token: None,
            faults: None,
        }
    }
}

/// `[freepbx]`: where the FreePBX data comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreepbxConfig {
    /// `mysql://user:pass@host:port/db`; when absent, credentials come from `config_file`.
    pub database_url: Option<Secret>,
    pub config_file: PathBuf,
    pub amportal_conf: PathBuf,
    pub voicemail_conf: PathBuf,
    /// Read a Snapshot JSON file instead of the database (demo, offline plans, support).
    pub snapshot: Option<PathBuf>,
    #[serde(deserialize_with = "de_duration")]
    pub poll_interval: Duration,
}

impl Default for FreepbxConfig {
    fn default() -> Self {
        FreepbxConfig {
            database_url: None,
            config_file: PathBuf::from("/etc/freepbx.conf"),
            amportal_conf: PathBuf::from("/etc/amportal.conf"),
            voicemail_conf: PathBuf::from("/etc/asterisk/voicemail.conf"),
            snapshot: None,
            // Changes visible in a quarter second (issue 13): the probe query costs MariaDB
            // ~0.25 ms of CPU, so ten polls a second stay well under 0.5 % of a core.
            poll_interval: Duration::from_millis(150),
        }
    }
}

/// `[isymphony]`: the target Configuration API. Fields left unset here fall back to the
/// cxpanel settings stored in FreePBX, then to the built-in defaults.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IsymphonyConfig {
    /// May carry `user:password@`; it is shown only without them (`text::redact_url`).
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub core_server: Option<String>,
    #[serde(deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
    pub tls_verify: Option<bool>,
    pub ca_file: Option<PathBuf>,
    /// Largest response body the API client reads, in bytes (default 64 MiB).
    pub max_response_bytes: Option<usize>,
    /// The CDR database login iSymphony gets in the PBX connection; unset: FreePBX's own
    /// (`CDRDBUSER`/`CDRDBPASS`, else `AMPDBUSER`/`AMPDBPASS` of freepbx.conf).
    pub cdr_username: Option<String>,
    pub cdr_password: Option<Secret>,
    /// Set by the process, never read from the file: the token that marks this agent's own
    /// requests to the embedded endpoint it started (they skip the login lockout).
    #[serde(skip)]
    pub agent_token: Option<Secret>,
    /// Set by the daemon, never read from the file: an earlier pass of this process went to
    /// an https target that cxpanel's settings named, so those settings cannot turn it into
    /// plain http (issue 18 point 8).
    #[serde(skip)]
    pub database_https_seen: bool,
}

impl std::fmt::Debug for IsymphonyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsymphonyConfig")
            .field("url", &self.url.as_deref().map(crate::text::redact_url))
            .field("username", &self.username)
            .field("password", &self.password)
            .field("core_server", &self.core_server)
            .field("timeout", &self.timeout)
            .field("tls_verify", &self.tls_verify)
            .field("ca_file", &self.ca_file)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("cdr_username", &self.cdr_username)
            .field("cdr_password", &self.cdr_password)
            .field("agent_token", &self.agent_token)
            .field("database_https_seen", &self.database_https_seen)
            .finish()
    }
}

/// `[sync]`: how a pass behaves.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Delete server objects the agent does not own (the cxpanel module's default; not ours).
    pub clean_unknown_items: bool,
    pub concurrency: usize,
    pub max_delete_fraction: f64,
    /// The safety valve applies to a kind only from this many managed objects on.
    pub valve_min_managed: usize,
    /// How often the daemon checks that iSymphony was not wiped or reinstalled (one GET of
    /// the core server, and one GET per top-level kind of a sample object); 0 turns it off.
    #[serde(deserialize_with = "de_duration")]
    pub isymphony_check_interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub resync_interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub debounce: Duration,
    /// Longest wait between retries of a failed pass (the wait doubles from 1 s up to this).
    #[serde(deserialize_with = "de_duration")]
    pub retry_backoff_max: Duration,
    /// Where the agent keeps what it pushed (defaults to `[server] data_dir`).
    pub state_dir: Option<PathBuf>,
    /// Without cxpanel tables: sync every extension (as an iSymphony extension).
    pub default_add_extensions: bool,
    /// Without cxpanel tables: create a login per extension that has a password to give.
    pub default_add_users: bool,
    /// Without cxpanel tables: logins are full (licensed) users.
    pub default_full_users: bool,
    /// Without cxpanel tables: sync every queue.
    pub default_add_queues: bool,
    /// Without cxpanel tables: sync every conference room.
    pub default_add_conference_rooms: bool,
    /// Without cxpanel tables: auto-answer on panel-originated calls.
    pub default_auto_answer: bool,
    /// A standby that has waited longer than this for the writer lock says so (status page,
    /// log, metric `isymphony_sync_standby_too_long`); 0 turns the warning off.
    #[serde(deserialize_with = "de_duration")]
    pub standby_warn_after: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            clean_unknown_items: false,
            // 16: measured best for the first sync and a full verify (issue 20); 32 gains
            // little on a fast server and doubles the connections a slow one must hold.
            concurrency: 16,
            max_delete_fraction: 0.5,
            valve_min_managed: 4,
            isymphony_check_interval: Duration::from_secs(3),
            resync_interval: Duration::from_secs(600),
            // Long enough to coalesce one GUI save or a file written in pieces; a bulk import
            // that runs longer is coalesced by single flight (one pass at a time).
            debounce: Duration::from_millis(50),
            retry_backoff_max: Duration::from_secs(30),
            state_dir: None,
            default_add_extensions: true,
            default_add_users: true,
            default_full_users: true,
            default_add_queues: true,
            default_add_conference_rooms: true,
            default_auto_answer: false,
            standby_warn_after: Duration::from_secs(300),
        }
    }
}

/// A configuration problem, phrased for an administrator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} not found (use --config PATH)")]
    Missing { path: PathBuf },
    #[error("cannot read configuration file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Invalid { path: PathBuf, source: ParseError },
}

impl Config {
    /// The configuration file's text, a missing file told apart from an unreadable one (the
    /// reload watcher reads it this way too).
    pub fn read_text(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                ConfigError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }

    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = Self::read_text(path)?;
        let mut cfg = Self::parse(&text).map_err(|source| ConfigError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        cfg.source = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parse TOML text; the error names the offending key.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let mut cfg: Config = toml::from_str(text).map_err(|source| ParseError::Toml {
            message: toml_error(text, &source),
            source: Box::new(source),
        })?;
        cfg.validate()?;
        cfg.server.read_password_file();
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ParseError> {
        let s = &self.server;
        if s.tls_cert.is_some() != s.tls_key.is_some() {
            return Err("server.tls_cert and server.tls_key must be set together".into());
        }
        if s.https_listen.is_some() && s.tls_cert.is_none() {
            return Err("server.https_listen needs server.tls_cert and server.tls_key".into());
        }
        if s.password_file.is_some() && s.password.expose() != DEFAULT_API_PASSWORD {
            return Err("server.password and server.password_file are both set; keep one".into());
        }
        if s.username.is_empty() {
            return Err("server.username must not be empty".into());
        }
        if s.auth_fail_limit == 0 {
            return Err("server.auth_fail_limit must be at least 1".into());
        }
        if s.max_connections == 0 {
            return Err("server.max_connections must be at least 1".into());
        }
        for (key, d) in [
            ("header_read_timeout", s.header_read_timeout),
            ("idle_timeout", s.idle_timeout),
            ("body_read_timeout", s.body_read_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("server.{key} must be more than 0 (e.g. \"10s\")").into());
            }
        }
        if let Some(t) = &s.metrics_token {
            let t = t.expose();
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(
                    "server.metrics_token must be at least 16 visible ASCII characters \
                            (e.g. `openssl rand -hex 32`)"
                        .into(),
                );
            }
        }
        if let Some(h) = s.allowed_hosts.iter().find(|h| {
            h.is_empty()
                || h.contains([':', '/', '@', ' ', '[', ']'])
                || h.parse::<std::net::IpAddr>().is_ok()
        }) {
            return Err(format!(
                "server.allowed_hosts: {h:?} is not a host name (no port, no address: the \
                 listener's own address is always accepted)"
            )
            .into());
        }
        if let Some(f) = &s.faults {
            f.validate()?;
        }
        if self.sync.concurrency == 0 {
            return Err("sync.concurrency must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.sync.max_delete_fraction) {
            return Err("sync.max_delete_fraction must be between 0 and 1".into());
        }
        let i = &self.isymphony;
        if i.password.is_some() && i.url.is_none() {
            return Err(
                "isymphony.password is set but isymphony.url is not: a password from \
                        this file is only sent to a URL from this file. Set isymphony.url to \
                        the iSymphony it is for, or remove isymphony.password to use the \
                        login cxpanel's settings in FreePBX give"
                    .into(),
            );
        }
        if self.isymphony.max_response_bytes.is_some_and(|n| n < 1024) {
            return Err("isymphony.max_response_bytes must be at least 1024".into());
        }
        Ok(())
    }

    /// Where the agent keeps its own state (pushed passwords, fingerprints).
    pub fn state_dir(&self) -> &Path {
        self.sync
            .state_dir
            .as_deref()
            .unwrap_or(&self.server.data_dir)
    }
}

/// A TOML error as one line naming the line, column and key, without quoting the source
/// line: toml's own Display shows the offending line, which may hold a password (a misspelled
/// `pasword = "..."` key, a wrong type next to a secret).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let mut msg = e.message().replace('\n', " ").trim().to_string();
    // serde quotes the offending value ("invalid type: string \"…\", expected …"); keep only
    // its kind, since the value may be a password given with the wrong type.
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some(exp) = rest.find(", expected") {
                let kind = rest.split_whitespace().next().unwrap_or("value");
                msg = format!("{prefix}{kind}{}", &rest[exp..]);
            }
            break;
        }
    }
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let col = before.len() - line_start + 1;
            // Name the key (`section.key`) from the text left of `=`, never the value.
            let this_line = text[line_start..].lines().next().unwrap_or("");
            let key = this_line
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !k.starts_with('['))
                .map(|k| {
                    let section = before
                        .lines()
                        .rev()
                        .map(str::trim)
                        .find(|l| l.starts_with('['))
                        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
                    match section {
                        Some(sec) if !sec.is_empty() => format!(" (key {sec}.{k})"),
                        _ => format!(" (key {k})"),
                    }
                })
                .unwrap_or_default();
            format!("TOML parse error at line {line}, column {col}{key}: {msg}")
        }
        None => format!("TOML parse error: {msg}"),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
