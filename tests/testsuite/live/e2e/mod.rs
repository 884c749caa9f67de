//! The Live API end to end: the embedded endpoint over real HTTP on
//! loopback with the **real Asterisk backend** (a private Asterisk 22 per test,
//! tests/support/asterisk.rs), every action's effect checked through Asterisk itself with an
//! independent AMI probe (`DBGet`, `QueueStatus`, `CoreShowChannels`, `ConfbridgeList`,
//! `PresenceStateList`, `DBGetTree`):
//!
//! - actions.rs: originate (bridged phones, INTERNAL segments, no Local plumbing legs), DND in
//!   both forms, queue login/logout/pause/penalty and their 422s, a queue call's from-queue
//!   legs never shown, transfer into a ConfBridge and of a gone segment, user status as
//!   CustomPresence, `[live] actions = "internal"`.
//! - injection.rs: hostile values into every action field through HTTP, with a recording
//!   proxy between the backend and Asterisk: 422 naming the field and no action written.
//! - down.rs: Asterisk stopped: 503 naming the lost AMI connection and since when, with
//!   `Retry-After`; configuration-derived lists keep answering; back with new live ids.

/// Poll `$cond` (an expression that may `.await`) every 50 ms for up to `$secs` seconds;
/// fails naming `$what`.
macro_rules! eventually {
    ($secs:expr, $what:expr, $cond:expr) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {} s waiting for {}",
                $secs,
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

use crate::support;

mod actions;
mod down;
mod injection;

use isymphony_sync::config::{LiveActions, LiveBackend, LiveConfig};
use isymphony_sync::live::ami::{ActionBuilder, AmiSettings, Message};
use isymphony_sync::live::backend::Backend;
use isymphony_sync::live::value::{AmiValue, Grammar};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::asterisk::{Asterisk, Probe, Recorder};
use support::server::{config, expect, Resp, TestServer};

/// A real Asterisk, the endpoint serving the Live API from it, and (optionally) the
/// recording proxy the backend talks through.
pub struct E2e {
    pub ast: Asterisk,
    pub t: TestServer,
    pub rec: Option<Recorder>,
}

/// `coreServers/getByName/default/` + `rest`.
pub fn cs(rest: &str) -> String {
    format!("coreServers/getByName/default/{rest}")
}

pub const E1001: &str = "coreServers/getByName/default/extensions/getByName/1001";
pub const Q400: &str = "coreServers/getByName/default/queues/getByName/400";
pub const Q401: &str = "coreServers/getByName/default/queues/getByName/401";
pub const ALICE_STATUS: &str = "coreServers/getByName/default/users/getByName/alice/status";

impl E2e {
    /// A fresh Asterisk and the endpoint with `[live] backend = "asterisk"` and `actions`;
    /// with `record`, the backend reaches Asterisk through a [`Recorder`].
    pub async fn start(actions: LiveActions, record: bool) -> E2e {
        let ast = Asterisk::start();
        let rec = if record {
            Some(Recorder::start(ast.port).await)
        } else {
            None
        };
        let mut settings: AmiSettings = ast.settings();
        if let Some(r) = &rec {
            settings.port = r.port;
        }
        let dir = tempfile::tempdir().unwrap();
        let server_cfg = config(dir.path());
        let live = isymphony_sync::live::Live {
            cfg: LiveConfig {
                backend: LiveBackend::Asterisk,
                actions,
                ..LiveConfig::default()
            },
            backend: Backend::Asterisk(isymphony_sync::live::asterisk::start(settings)),
        };
        let handle = isymphony_sync::server::start_live(&server_cfg, None, None, Some(live))
            .await
            .expect("the endpoint starts");
        let t = TestServer::around(handle, dir);
        let id = t.core_server("default").await;
        fixture(&t, &id).await;
        let e = E2e { ast, t, rec };
        e.wait_up().await;
        e
    }

    /// Originate a call from the extension at `ext` (a Live API path) to `destination`: 204.
    pub async fn originate(&self, ext: &str, destination: &str) {
        let body = json!({ "destination": destination });
        expect(self.post(&format!("{ext}/originate"), body).await, 204, "");
    }

    pub async fn req(&self, m: Method, path: &str, body: Option<&Value>) -> Resp {
        self.t.live(m, path, body).await
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::GET, path, None).await.pair()
    }
    pub async fn ok(&self, path: &str) -> Value {
        expect(self.get(path).await, 200, "")
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::POST, path, Some(&body)).await.pair()
    }
    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::POST, path, None).await.pair()
    }

    /// Until the Live API serves live state (the AMI link is up and the snapshot applied).
    pub async fn wait_up(&self) {
        eventually!(
            20,
            "the Live API to serve live state",
            self.get(&cs("callSegments")).await.0 == StatusCode::OK
        );
    }

    /// Log extension `ext` in to queue 400 and wait until the queue has `agents` agents.
    pub async fn login_400(&self, ext: &str, agents: usize) {
        let login = json!({"extensionNumber": ext});
        expect(self.post(&format!("{Q400}/login"), login).await, 204, "");
        eventually!(5, "the agents of 400", self.agents(Q400).await == agents);
    }

    /// How many agents the Live API shows for `queue` now (0 when it shows no list).
    pub async fn agents(&self, queue: &str) -> usize {
        let list = self.ok(&format!("{queue}/agents")).await;
        list.as_array().map_or(0, Vec::len)
    }

    /// Call 9999 (answers and waits) from 1001; the live id of 1001's call segment.
    pub async fn call_from_1001(&self) -> String {
        let dest = json!({"destination": "9999"});
        expect(
            self.post(&format!("{E1001}/originate"), dest).await,
            204,
            "",
        );
        let mut seg: String;
        eventually!(10, "1001's segment", {
            let s = self.ok(&cs("extensions/getByName/1001/callSegments")).await;
            seg = s[0]["id"].as_str().unwrap_or_default().to_string();
            !seg.is_empty()
        });
        seg
    }

    /// The live id (`id`) of the one agent of `queue` whose name is `name`.
    pub async fn agent_id(&self, queue: &str, name: &str) -> String {
        let agents = self.ok(&format!("{queue}/agents")).await;
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["id"].as_str())
            .unwrap_or_else(|| panic!("agent {name} in {queue}: {agents}"))
            .to_string()
    }
}

fn ext(n: &str, name: &str) -> Value {
    json!({"id": format!("e{n}"), "extension": n, "displayName": name,
           "peer": format!("Local/{n}@sim-phone")})
}

/// Through the Configuration API, as the agent's sync would: 1001 (alice, also managing
/// 1003), 1002 (bob), 1003 on the Local phones of the test dialplan; queues 400 (dynamic) and
/// 401 (static member 1003), both enabled; room 8000; parking 70.
async fn fixture(t: &TestServer, cs: &str) {
    let ex = format!("asterisk/{cs}/extensions");
    for e in [
        ext("1001", "Front Desk"),
        ext("1002", "Back Office"),
        ext("1003", "Lab"),
    ] {
        expect(t.post(&ex, e).await, 204, "");
    }
    let users = format!("core/{cs}/users");
    for (id, name) in [("u1", "alice"), ("u2", "bob")] {
        let u = json!({"id": id, "username": name, "password": "pw", "full": true,
                       "displayName": name.to_uppercase()});
        expect(t.post(&users, u).await, 204, "");
    }
    for (e, u) in [("e1001", "u1"), ("e1003", "u1"), ("e1002", "u2")] {
        let path = format!("{ex}/{e}/managingUser");
        expect(t.post(&path, json!({"id": u})).await, 204, "");
    }
    let a = format!("asterisk/{cs}");
    for (id, q) in [("q400", "400"), ("q401", "401")] {
        let body = json!({"id": id, "identifier": q, "displayName": format!("Queue {q}"),
                          "enabled": true});
        expect(t.post(&format!("{a}/queues"), body).await, 204, "");
    }
    let room = json!({"id": "r8000", "identifier": "8000", "name": "Weekly sync",
                      "destinationExtension": "8000"});
    expect(t.post(&format!("{a}/conferenceRooms"), room).await, 204, "");
    let lot = json!({"identifier": "default", "name": "Main", "destinationExtension": "70"});
    expect(t.post(&format!("{a}/parkingLots"), lot).await, 204, "");
}

fn v(field: &str, s: &str, g: Grammar) -> AmiValue {
    AmiValue::parse(field, s, g).expect("a valid probe value")
}

/// What Asterisk itself says, through an independent AMI connection.
pub struct Ast(pub Probe);

impl Ast {
    pub async fn open(a: &Asterisk) -> Ast {
        Ast(Probe::open(a).await)
    }

    /// `DBGet DND <ext>`: `Some(value)` or None when the key is absent.
    pub async fn dnd(&mut self, ext: &str) -> Option<String> {
        let r = self
            .0
            .ask(
                ActionBuilder::new("DBGet")
                    .constant("Family", "DND")
                    .value("Key", &v("k", ext, Grammar::Exten)),
            )
            .await;
        if r.response.response() != Some("Success") {
            return None;
        }
        r.events.first().map(|m| m.str("Val").to_string())
    }

    /// The `QueueMember` of `interface` in `queue`, per `QueueStatus`.
    pub async fn member(&mut self, queue: &str, interface: &str) -> Option<Message> {
        self.members(queue)
            .await
            .into_iter()
            .find(|m| m.str("Location") == interface)
    }

    pub async fn members(&mut self, queue: &str) -> Vec<Message> {
        let r = self
            .0
            .ask(ActionBuilder::new("QueueStatus").value("Queue", &v("q", queue, Grammar::Name)))
            .await;
        r.events
            .into_iter()
            .filter(|m| m.event() == Some("QueueMember"))
            .collect()
    }

    /// `CoreShowChannels`: (channel name, bridge id, unique id, state).
    pub async fn channels(&mut self) -> Vec<Chan> {
        let r = self.0.ask(ActionBuilder::new("CoreShowChannels")).await;
        r.events
            .iter()
            .filter(|m| m.event() == Some("CoreShowChannel"))
            .map(|m| Chan {
                name: m.str("Channel").to_string(),
                bridge: m.str("BridgeId").to_string(),
                unique_id: m.str("Uniqueid").to_string(),
                exten: m.str("Exten").to_string(),
                state: m.str("ChannelState").to_string(),
            })
            .collect()
    }

    /// The channels `ConfbridgeList <room>` shows.
    pub async fn conference(&mut self, room: &str) -> Vec<String> {
        let r = self
            .0
            .ask(
                ActionBuilder::new("ConfbridgeList")
                    .value("Conference", &v("c", room, Grammar::Name)),
            )
            .await;
        r.events
            .iter()
            .filter(|m| m.event() == Some("ConfbridgeList"))
            .map(|m| m.str("Channel").to_string())
            .collect()
    }

    /// `PresenceStateList`: (presentity, status, message).
    pub async fn presence(&mut self) -> Vec<(String, String, String)> {
        let r = self.0.ask(ActionBuilder::new("PresenceStateList")).await;
        r.events
            .iter()
            .map(|m| {
                (
                    m.str("Presentity").to_string(),
                    m.str("Status").to_string(),
                    m.str("Message").to_string(),
                )
            })
            .collect()
    }

    /// Every AstDB key and value (`DBGetTree` of the whole database), sorted.
    pub async fn astdb(&mut self) -> Vec<String> {
        let r = self.0.ask(ActionBuilder::new("DBGetTree")).await;
        let mut out: Vec<String> = r
            .events
            .iter()
            .filter(|m| m.get("Key").is_some())
            .map(|m| format!("{}/{}={}", m.str("Family"), m.str("Key"), m.str("Val")))
            .collect();
        out.sort();
        out
    }

    pub async fn hangup(&mut self, channel: &str) {
        let r = self
            .0
            .ask(ActionBuilder::new("Hangup").value("Channel", &v("c", channel, Grammar::Channel)))
            .await;
        assert_eq!(r.response.response(), Some("Success"), "Hangup {channel}");
    }
}

#[derive(Debug, Clone)]
pub struct Chan {
    pub name: String,
    pub bridge: String,
    pub unique_id: String,
    pub exten: String,
    pub state: String,
}

impl Chan {
    /// The channel is a leg of the Local phone of `ext`.
    pub fn of(&self, ext: &str) -> bool {
        self.name.starts_with(&format!("Local/{ext}@sim-phone-"))
    }
}
