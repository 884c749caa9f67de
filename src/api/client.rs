//! HTTP client of the Configuration API: typed calls, keep-alive, timeouts, retries.
//!
//! One [`Client`] per pass target. It keeps a connection pool (keep-alive), applies the
//! `[isymphony] timeout` to every request, and retries connection errors, timeouts and 5xx
//! answers with exponential backoff plus jitter (bounded attempts). A POST that carries the
//! agent's own id and meets 409 is treated as done once a GET confirms the object exists (the
//! first attempt may have succeeded before its answer was lost). Requests are counted by
//! method for reports and tests. Bodies are never logged (they can carry password hashes), and
//! error messages name the method and path only.
//!
//! What a server sends back is bounded and shown safely: a response body is read up to
//! `max_response_bytes` (default 64 MiB; more is an error, never buffered), an error body up
//! to 64 KiB, and an error message quotes at most [`QUOTE_MAX`] characters of it, control
//! characters escaped, so a hostile or broken server cannot exhaust memory, fill a log with a
//! megabyte or forge log lines.

use super::body::{error_message, json_error, read_capped, read_prefix, Capped};
use super::confirm::Confirm;
use super::counts::RequestCounter;
pub use super::counts::RequestCounts;
use crate::secret::Secret;
use crate::text::{clip, QUOTE_MAX};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything needed to reach one Configuration API. `Debug` shows the URL without
/// credentials.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL ending in `…/communication_manager/api/resource/`.
    pub base_url: String,
    pub username: String,
    pub password: Secret,
    pub timeout: Duration,
    pub tls_verify: bool,
    pub ca_file: Option<PathBuf>,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled on each further one, plus up to 100% jitter.
    pub backoff_base: Duration,
    /// Parallel connections kept per host (keep-alive pool).
    pub pool_size: usize,
    /// Largest response body read (bytes); a larger one is an error.
    pub max_response_bytes: usize,
    /// Sent in `x-isymphony-sync-agent` when the target is the embedded endpoint this process
    /// started (its login lockout then never applies to us); None for any other server.
    pub agent_token: Option<Secret>,
}

/// Default of `[isymphony] max_response_bytes`: far above any real configuration (10,000
/// extensions list in about 3 MB), far below what would hurt the host.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Error bodies are read this far only: their message is all the client uses.
const ERROR_BODY_MAX: usize = 64 * 1024;

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &crate::text::redact_url(&self.base_url))
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .field("tls_verify", &self.tls_verify)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, username: impl Into<String>, password: Secret) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            username: username.into(),
            password,
            timeout: Duration::from_secs(10),
            tls_verify: true,
            ca_file: None,
            max_attempts: 4,
            backoff_base: Duration::from_millis(200),
            pool_size: 16,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            agent_token: None,
        }
    }
}

/// A failed API call. Messages name the method and the relative path, never a body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{method} {path}: HTTP {status}{}", fmt_msg(.message))]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    #[error("{method} {path}: unexpected response: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

fn fmt_msg(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(" ({m})")
    }
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    /// The path of the request that failed (none for a client that could not be set up).
    pub fn path(&self) -> Option<&str> {
        match self {
            ApiError::Status { path, .. }
            | ApiError::Transport { path, .. }
            | ApiError::Decode { path, .. } => Some(path),
            ApiError::Setup(_) => None,
        }
    }
    /// The server could not be reached at all (as opposed to refusing a request).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ApiError::Transport { .. })
    }
}

/// Outcome of a successful POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Created,
    /// 409, and the object with our id is there: an earlier attempt (or pass) created it.
    AlreadyThere,
}

/// The Configuration API client. Cheap to clone (shares the pool and the counters).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The base URL, parsed once: each request's URL is this one with its path and query set,
    /// which spares parsing the scheme and host per request (a tenth of a verify's CPU).
    base_url: reqwest::Url,
    username: String,
    /// `Basic …` of the username and password, encoded once (sensitive: never printed).
    authorization: reqwest::header::HeaderValue,
    max_attempts: u32,
    backoff_base: Duration,
    max_response_bytes: usize,
    /// Only for the certificate hint of transport errors.
    ca_file: Option<PathBuf>,
    counters: Arc<RequestCounter>,
    agent_token: Option<reqwest::header::HeaderValue>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base_url.as_str())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client, ApiError> {
        let mut base = cfg.base_url.trim().to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let mut url = reqwest::Url::parse(&base)
            .map_err(|e| ApiError::Setup(format!("invalid [isymphony] url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::Setup(format!(
                "invalid [isymphony] url: scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        // Credentials inside the URL would end up in error messages: move them out.
        let mut username = cfg.username.clone();
        let mut password = cfg.password.clone();
        if !url.username().is_empty() {
            let (clean, creds) = crate::text::split_userinfo(url.as_str());
            if let Some(c) = creds {
                username = c.username;
                if let Some(p) = c.password {
                    password = Secret::new(p);
                }
            }
            url = reqwest::Url::parse(&clean)
                .map_err(|e| ApiError::Setup(format!("invalid [isymphony] url: {e}")))?;
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(cfg.pool_size.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("isymphony-sync/", env!("CARGO_PKG_VERSION")));
        // Plain HTTP (the usual local iSymphony, redirects off) never uses TLS: do not load
        // and parse the system's root certificates for every pass's client.
        if url.scheme() == "http" {
            builder = builder.tls_built_in_root_certs(false);
        }
        if !cfg.tls_verify {
            tracing::warn!(
                "[isymphony] tls_verify = false: the server's TLS certificate is NOT verified"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        // With ca_file, its certificates are the trust (pinned or as CAs; see `api::tls`).
        match &cfg.ca_file {
            Some(ca) if cfg.tls_verify => {
                let tls =
                    super::tls::ca_file_config(ca).map_err(|e| ApiError::Setup(e.to_string()))?;
                builder = builder.use_preconfigured_tls(tls);
            }
            _ => {}
        }
        let http = builder
            .build()
            .map_err(|e| ApiError::Setup(e.to_string()))?;
        Ok(Client {
            http,
            base_url: url,
            authorization: basic_authorization(&username, &password)?,
            username,
            max_attempts: cfg.max_attempts.max(1),
            backoff_base: cfg.backoff_base,
            max_response_bytes: cfg.max_response_bytes.max(1),
            ca_file: cfg.ca_file.clone().filter(|_| cfg.tls_verify),
            counters: Arc::new(RequestCounter::default()),
            agent_token: cfg.agent_token.as_ref().and_then(|t| {
                let mut v = reqwest::header::HeaderValue::from_str(t.expose()).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
        })
    }

    /// The base URL (without credentials).
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// The same client (the same connections) counting its requests from zero.
    pub fn with_new_counts(self) -> Client {
        Client {
            counters: Arc::new(RequestCounter::default()),
            ..self
        }
    }

    /// Requests sent so far by this client and its clones.
    pub fn counts(&self) -> RequestCounts {
        self.counters.snapshot()
    }

    fn count(&self, m: &Method) {
        self.counters.record(m.as_str());
    }

    /// GET and decode.
    pub async fn get<T: DeserializeOwned>(&self, path: impl AsRef<str>) -> Result<T, ApiError> {
        let path = path.as_ref();
        let bytes = self.request(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            method: "GET".into(),
            path: path.into(),
            message: json_error(&e),
        })
    }

    /// GET; the body of a 2xx answer undecoded (for callers that decode element by element).
    pub async fn get_raw(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        self.request(Method::GET, path, None).await
    }

    /// GET and decode; 404 is `None`.
    pub async fn get_opt<T: DeserializeOwned>(
        &self,
        path: impl AsRef<str>,
    ) -> Result<Option<T>, ApiError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<(), ApiError> {
        let payload = payload(&Method::PUT, path, body)?;
        self.put_json(path, payload).await
    }

    /// PUT of a body already serialised as JSON.
    pub async fn put_json(&self, path: &str, body: Bytes) -> Result<(), ApiError> {
        self.request(Method::PUT, path, Some(body)).await.map(drop)
    }

    pub async fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.request(Method::DELETE, path, None).await.map(drop)
    }

    /// POST; with `confirm`, a 409 answer is success when the object is found to exist.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        confirm: Option<&Confirm>,
    ) -> Result<Posted, ApiError> {
        let payload = payload(&Method::POST, path, body)?;
        self.post_json(path, payload, confirm).await
    }

    /// [`Client::post`] of a body already serialised as JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: Bytes,
        confirm: Option<&Confirm>,
    ) -> Result<Posted, ApiError> {
        match self.request(Method::POST, path, Some(body)).await {
            Ok(_) => Ok(Posted::Created),
            Err(e) if e.status() == Some(409) => {
                let Some(confirm) = confirm else {
                    return Err(e);
                };
                let there = match confirm {
                    Confirm::Get(p) => self.get_opt::<Value>(p).await?.is_some(),
                    Confirm::ListHasId { list, id } => {
                        let items: Vec<Value> = self.get(list).await?;
                        items
                            .iter()
                            .any(|v| v.get("id").and_then(Value::as_str) == Some(id.as_str()))
                    }
                    Confirm::ListHasValue { list, value } => {
                        let items: Vec<Value> = self.get(list).await?;
                        items.iter().any(|v| v.as_str() == Some(value.as_str()))
                    }
                    Confirm::GetHasField { path, field, value } => self
                        .get_opt::<Value>(path)
                        .await?
                        .is_some_and(|v| v.get(field).and_then(Value::as_str) == Some(value)),
                };
                if there {
                    Ok(Posted::AlreadyThere)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// One request with retries; returns the response body of a 2xx answer. Each attempt
    /// shares the payload's bytes.
    async fn request(
        &self,
        method: Method,
        path: &str,
        payload: Option<Bytes>,
    ) -> Result<Vec<u8>, ApiError> {
        let url = self.url_of(path);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.count(&method);
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::AUTHORIZATION, self.authorization.clone())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(t) = &self.agent_token {
                req = req.header(super::AGENT_HEADER, t.clone());
            }
            if let Some(p) = &payload {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(p.clone());
            }
            let err = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        match read_capped(resp, self.max_response_bytes).await {
                            Ok(b) => return Ok(b),
                            Err(Capped::TooLarge) => {
                                return Err(ApiError::Decode {
                                    method: method.to_string(),
                                    path: path.into(),
                                    message: format!(
                                        "the response is larger than {} bytes \
                                         ([isymphony] max_response_bytes); raise that limit \
                                         if the server really holds this much",
                                        self.max_response_bytes
                                    ),
                                })
                            }
                            Err(Capped::Failed(e)) => self.transport(&method, path, &e),
                        }
                    } else {
                        // Only the message is used: read a bounded prefix, drop the rest.
                        let text = read_prefix(resp, ERROR_BODY_MAX).await;
                        let e = ApiError::Status {
                            method: method.to_string(),
                            path: path.into(),
                            status: status.as_u16(),
                            message: error_message(&text),
                        };
                        if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS {
                            return Err(e);
                        }
                        e
                    }
                }
                Err(e) => self.transport(&method, path, &e),
            };
            if attempt >= self.max_attempts {
                return Err(err);
            }
            tracing::debug!(attempt, error = %err, "retrying");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.backoff_base.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << (attempt - 1).min(10));
        let jitter = if exp > 0 {
            rand::random::<u64>() % (exp + 1)
        } else {
            0
        };
        Duration::from_millis(exp + jitter)
    }

    /// The URL of `path` (relative to the base, with an optional query): what parsing the
    /// base followed by the path gives.
    fn url_of(&self, path: &str) -> reqwest::Url {
        let path = path.trim_start_matches('/');
        let (path, f) = match path.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (path, None),
        };
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let mut url = self.base_url.clone();
        url.set_path(&format!("{}{p}", self.base_url.path()));
        url.set_query(q);
        url.set_fragment(f);
        url
    }

    /// A transport error; a refused certificate gets the hint of what to put in `ca_file`.
    fn transport(&self, method: &Method, path: &str, e: &reqwest::Error) -> ApiError {
        let mut err = transport(method, path, e);
        if let ApiError::Transport { message, .. } = &mut err {
            let hint = super::tls::certificate_hint(e, &self.base_url, self.ca_file.as_deref());
            if let Some(hint) = hint {
                *message = format!("cannot connect: {hint}");
            }
        }
        err
    }
}

fn transport(method: &Method, path: &str, e: &reqwest::Error) -> ApiError {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    // reqwest's source chain names the cause (refused, DNS, TLS) without the URL's secrets.
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    ApiError::Transport {
        method: method.to_string(),
        path: path.into(),
        message: if cause.is_empty() {
            what
        } else {
            format!("{what}: {}", clip(&cause, QUOTE_MAX))
        },
    }
}

/// `body` as the JSON a request sends.
fn payload(method: &Method, path: &str, body: &Value) -> Result<Bytes, ApiError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| ApiError::Decode {
            method: method.to_string(),
            path: path.into(),
            message: e.to_string(),
        })
}

/// The `Authorization` header of HTTP Basic authentication (RFC 7617), as reqwest's
/// `basic_auth` builds it, made once per client rather than per request.
fn basic_authorization(
    username: &str,
    password: &Secret,
) -> Result<reqwest::header::HeaderValue, ApiError> {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{username}:{}", password.expose()));
    let mut v = reqwest::header::HeaderValue::try_from(format!("Basic {token}"))
        .map_err(|_| ApiError::Setup("the credentials cannot form a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
