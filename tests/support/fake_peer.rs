//! A FAKE iSymphony in front of a real one: a small HTTP peer, started by the test, that
//! forwards every request to the real (embedded) server except those matching a rule, which it
//! answers itself: a 403 as iSymphony gives for a licence-restricted resource, a 404 as an older
//! server without the resource gives, a body that is not JSON, or the real body with one
//! object's field replaced. These faults cannot be produced with the embedded server itself
//! (it serves every resource and validates every value), hence the fake.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What the fake does with a GET whose path ends with `suffix`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and an iSymphony-style error body.
    Status(u16, &'static str),
    /// Answer 200 with this body (not JSON).
    Garbage(&'static str),
    /// Forward, then set `field` to `value` in the list element whose `key_field` is `key`.
    Corrupt {
        key_field: &'static str,
        key: String,
        field: &'static str,
        value: Value,
    },
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    rules: Arc<Mutex<Vec<(String, Fault)>>>,
    http: reqwest::Client,
}

pub struct FakePeer {
    /// Base URL (`…/communication_manager/api/resource/`) of the fake.
    pub url: String,
    rules: Arc<Mutex<Vec<(String, Fault)>>>,
}

impl FakePeer {
    /// Start in front of the server whose root is `upstream_root` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream_root: &str) -> FakePeer {
        let rules = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            upstream: upstream_root.trim_end_matches('/').to_string(),
            rules: rules.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        FakePeer {
            url: format!("http://{addr}/communication_manager/api/resource/"),
            rules,
        }
    }

    /// GETs whose path ends with `suffix` get `fault`.
    pub fn rule(&self, suffix: impl Into<String>, fault: Fault) {
        self.rules.lock().unwrap().push((suffix.into(), fault));
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
}

fn rule_for(s: &Shared, method: &Method, path: &str) -> Option<Fault> {
    if method != Method::GET {
        return None;
    }
    let rules = s.rules.lock().unwrap();
    rules
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, f)| f.clone())
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let fault = rule_for(&s, &method, &path);
    match &fault {
        Some(Fault::Status(code, msg)) => {
            let code = StatusCode::from_u16(*code).unwrap();
            let body = serde_json::json!({"status": code.as_u16(), "message": msg});
            return (
                code,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
        Some(Fault::Garbage(text)) => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                *text,
            )
                .into_response();
        }
        _ => {}
    }
    let url = format!(
        "{}{}",
        s.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = s
        .http
        .request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            url,
        )
        .body(body.to_vec());
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let Ok(resp) = req.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    if let Some(Fault::Corrupt {
        key_field,
        key,
        field,
        value,
    }) = fault
    {
        if let Ok(Value::Array(mut items)) = serde_json::from_slice::<Value>(&bytes) {
            for it in &mut items {
                if it.get(key_field).and_then(Value::as_str) == Some(key.as_str()) {
                    it[field] = value.clone();
                }
            }
            bytes = serde_json::to_vec(&items).unwrap();
        }
    }
    (status, [("content-type", "application/json")], bytes).into_response()
}
