//! The Live API (`communication_manager/rest/live/`) over real HTTP on loopback, with the
//! simulated backend: every route and its exact field set, getByName mixed with ids and both
//! spellings, live ids (stable, new on re-create), configuration changes visible at once,
//! licence 403s and filters, 422 naming the field for every bad body and hostile value, the
//! `[live] actions` modes, 503 while the link is down, and the same gate as the config API.

use crate::support;

mod actions;
mod reads;

use isymphony_sync::config::{Config, LiveActions, LiveBackend, LiveConfig, ServerConfig};
use isymphony_sync::live::facts::{Link, Member};
use isymphony_sync::live::Live;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};
use support::server::*;

pub struct Lv {
    pub t: TestServer,
    pub live: String,
    pub cs: String,
}

impl Lv {
    pub async fn req(&self, m: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.t.live(m, path, body.as_ref()).await.pair()
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::GET, path, None).await
    }
    pub async fn ok(&self, path: &str) -> Value {
        expect(self.get(path).await, 200, "")
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::POST, path, Some(body)).await
    }
    /// POST `{"extensionNumber": ext}` (a queue login or logout by number).
    pub async fn post_ext(&self, path: &str, ext: &str) -> (StatusCode, Value) {
        self.post(path, json!({ "extensionNumber": ext })).await
    }
    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::POST, path, None).await
    }
    /// `coreServers/getByName/default/` + `rest`.
    pub fn cs(rest: &str) -> String {
        format!("coreServers/getByName/default/{rest}")
    }
    pub fn shared(&self) -> &std::sync::Arc<isymphony_sync::live::backend::Shared> {
        self.t.handle.live().unwrap().shared()
    }
    pub fn set_link_down(&self) {
        self.shared().update(|f| {
            f.link = Link::Down {
                since: SystemTime::now(),
                reason: "connection refused".into(),
            }
        });
    }
}

pub async fn start(live: impl FnOnce(&mut LiveConfig), srv: impl FnOnce(&mut ServerConfig)) -> Lv {
    let mut l = start_bare(live, srv).await;
    l.cs = l.t.core_server("default").await;
    fixture(&l.t, &l.cs).await;
    l
}

/// The endpoint with the simulated backend and an empty store.
pub async fn start_bare(
    live: impl FnOnce(&mut LiveConfig),
    srv: impl FnOnce(&mut ServerConfig),
) -> Lv {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        server: config(dir.path()),
        ..Config::default()
    };
    srv(&mut cfg.server);
    cfg.live.backend = LiveBackend::Simulated;
    cfg.live.actions = LiveActions::All;
    cfg.live.simulated_call_duration = Duration::from_secs(60);
    live(&mut cfg.live);
    let l = Live::start(&cfg).await.unwrap();
    let handle = isymphony_sync::server::start_live(&cfg.server, None, None, l)
        .await
        .unwrap();
    let t = TestServer::around(handle, dir);
    Lv {
        live: t.live_root(),
        t,
        cs: String::new(),
    }
}

pub fn ext(n: &str, name: &str, peer: &str) -> Value {
    json!({"id": format!("e{n}"), "extension": n, "displayName": name, "peer": peer})
}

/// 1001 (alice, full) and 1002 (bob, lite) on Local phones, 1003 on PJSIP (unbound); queue
/// 400 enabled, 401 disabled; room 8000; parking on 70.
async fn fixture(t: &TestServer, cs: &str) {
    let ex = format!("asterisk/{cs}/extensions");
    for e in [
        ext("1001", "Front Desk", "Local/1001@sim-phone"),
        ext("1002", "Back Office", "Local/1002@sim-phone"),
        ext("1003", "Lab", "PJSIP/1003"),
    ] {
        expect(t.post(&ex, e).await, 204, "");
    }
    let users = format!("core/{cs}/users");
    for (id, name, full) in [("u1", "alice", true), ("u2", "bob", false)] {
        let u = json!({"id": id, "username": name, "password": "pw", "full": full, "displayName": name.to_uppercase()});
        expect(t.post(&users, u).await, 204, "");
    }
    for (e, u) in [("e1001", "u1"), ("e1002", "u2")] {
        let path = format!("{ex}/{e}/managingUser");
        expect(t.post(&path, json!({"id": u})).await, 204, "");
    }
    let a = format!("asterisk/{cs}");
    for (id, q, enabled) in [("q400", "400", true), ("q401", "401", false)] {
        let body = json!({"id": id, "identifier": q, "displayName": format!("Queue {q}"), "enabled": enabled});
        expect(t.post(&format!("{a}/queues"), body).await, 204, "");
    }
    let room = json!({"id": "r8000", "identifier": "8000", "name": "Weekly sync", "destinationExtension": "8000"});
    expect(t.post(&format!("{a}/conferenceRooms"), room).await, 204, "");
    let lot = json!({"identifier": "default", "name": "Main", "destinationExtension": "70"});
    expect(t.post(&format!("{a}/parkingLots"), lot).await, 204, "");
}

pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[track_caller]
pub fn assert_keys(v: &Value, want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(keys(v), want, "{v}");
}

pub fn member(queue: &str, interface: &str, dynamic: bool) -> Member {
    Member {
        id: uuid::Uuid::new_v4(),
        queue: queue.into(),
        interface: interface.into(),
        name: "Static".into(),
        state_interface: String::new(),
        dynamic,
        paused: false,
        paused_reason: String::new(),
        penalty: 0,
        status: 2,
        calls_taken: 3,
        last_call: 1,
        last_pause: 0,
        login_time: 0,
    }
}
