//! Shared helpers of the embedded-server integration tests: start a server on a loopback port
//! with a temporary data_dir and talk to it with reqwest.

use isymphony_sync::config::ServerConfig;
use isymphony_sync::server::{self, ServerHandle};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const USER: &str = "manager";
pub const PASS: &str = isymphony_sync::config::DEFAULT_API_PASSWORD;

pub struct TestServer {
    pub handle: ServerHandle,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub base: String,
}

pub fn config(dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        ..ServerConfig::default()
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}, None).await
}

pub async fn start_with(
    f: impl FnOnce(&mut ServerConfig),
    extra: Option<axum::Router>,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    f(&mut cfg);
    let handle = server::start(&cfg, extra).await.unwrap();
    TestServer::around(handle, dir)
}

/// One answer of the Live API: status, headers and the JSON body (Null when there is none).
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn pair(&self) -> (StatusCode, Value) {
        (self.status, self.body.clone())
    }
}

impl TestServer {
    /// A client of the running endpoint `handle`, whose data_dir is inside `dir`.
    pub fn around(handle: ServerHandle, dir: tempfile::TempDir) -> TestServer {
        let base = handle.base_url();
        TestServer {
            handle,
            dir,
            client: reqwest::Client::new(),
            base,
        }
    }

    /// The Live API's root (`…/rest/live/`), beside the Configuration API's base URL.
    pub fn live_root(&self) -> String {
        self.base.replace("api/resource", "rest/live")
    }

    /// A Live API request: `path` below its root, with the login and a JSON body when given.
    pub async fn live(&self, m: Method, path: &str, body: Option<&Value>) -> Resp {
        let mut r = self
            .client
            .request(m, format!("{}{}", self.live_root(), path))
            .basic_auth(USER, Some(PASS));
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.expect("the endpoint answers");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Resp {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// Send a request with the right credentials; `path` is relative to the base URL.
    pub async fn req(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{}", self.base, path);
        let mut r = self
            .client
            .request(method, url)
            .basic_auth(USER, Some(PASS))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::DELETE, path, None).await
    }

    /// POST `body` to `path`: it must answer 204 with an empty body.
    pub async fn post_204(&self, path: &str, body: Value) {
        expect_of(
            &format!("POST {path}"),
            self.post(path, body).await,
            204,
            "",
        );
    }
    /// PUT `body` to `path`: it must answer 204 with an empty body.
    pub async fn put_204(&self, path: &str, body: Value) {
        expect_of(&format!("PUT {path}"), self.put(path, body).await, 204, "");
    }
    /// DELETE `path`: it must answer 204 with an empty body.
    pub async fn delete_204(&self, path: &str) {
        expect_of(&format!("DELETE {path}"), self.delete(path).await, 204, "");
    }

    /// Create core server `slug` the way cxpanel does and return its id.
    pub async fn core_server(&self, slug: &str) -> String {
        let (s, _) = self
            .post(
                "server/coreServers/",
                json!({"slug": slug, "name": slug, "brokerHost": "localhost", "brokerPort": "50000"}),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, v) = self
            .get(&format!("server/coreServers/getBySlug/{slug}"))
            .await;
        assert_eq!(s, StatusCode::OK);
        v["id"].as_str().unwrap().to_string()
    }
}

/// GET `url` with `client`, logged in as the default `manager` (the seed's login); panics
/// when no answer comes.
pub async fn get_as_manager(client: &reqwest::Client, url: String) -> reqwest::Response {
    client
        .get(url)
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .expect("an answer")
}

/// GET `url` as the manager: it must answer 200 with a core server whose slug is `slug`.
pub async fn assert_core_server_at(client: &reqwest::Client, url: String, slug: &str) {
    let r = get_as_manager(client, url).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("a JSON body");
    assert_eq!(v["slug"], json!(slug));
}

/// Assert a status, and for errors that the JSON body carries it and names `text`.
#[track_caller]
pub fn expect(got: (StatusCode, Value), status: u16, text: &str) -> Value {
    expect_of("", got, status, text)
}

/// [`expect`] on the answer to `request` (a failure names it: the helpers that call this are
/// async, so the caller's line is not in the panic).
#[track_caller]
pub fn expect_of(request: &str, got: (StatusCode, Value), status: u16, text: &str) -> Value {
    assert_eq!(got.0.as_u16(), status, "{request} body: {}", got.1);
    if status >= 400 {
        assert_eq!(got.1["status"], json!(status), "{request} body: {}", got.1);
        let msg = got.1["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(text),
            "{request} message {msg:?} should contain {text:?}"
        );
    } else if status == 204 {
        assert_eq!(got.1, Value::Null, "{request}: 204 must have an empty body");
    }
    got.1
}
