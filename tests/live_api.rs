//! The Live API (`communication_manager/rest/live/`) over real HTTP on loopback, with the
//! simulated backend: every route and its exact field set, getByName mixed with ids and both
//! spellings, live ids (stable, new on re-create), configuration changes visible at once,
//! licence 403s and filters, 422 naming the field for every bad body and hostile value, the
//! `[live] actions` modes, 503 while the link is down, and the same gate as the config API.

mod support;

use isymphony_sync::config::{Config, LiveActions, LiveBackend, LiveConfig, ServerConfig};
use isymphony_sync::live::facts::{Link, Member};
use isymphony_sync::live::Live;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};
use support::server::*;

struct Lv {
    t: TestServer,
    live: String,
    cs: String,
}

impl Lv {
    async fn req(&self, m: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self
            .t
            .client
            .request(m, format!("{}{}", self.live, path))
            .basic_auth(USER, Some(PASS));
        if let Some(b) = body {
            r = r
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let s = resp.status();
        let text = resp.text().await.unwrap();
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::GET, path, None).await
    }
    async fn ok(&self, path: &str) -> Value {
        expect(self.get(path).await, 200, "")
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::POST, path, Some(body)).await
    }
    async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::POST, path, None).await
    }
    /// `coreServers/getByName/default/` + `rest`.
    fn cs(rest: &str) -> String {
        format!("coreServers/getByName/default/{rest}")
    }
    fn shared(&self) -> &std::sync::Arc<isymphony_sync::live::backend::Shared> {
        self.t.handle.live().unwrap().shared()
    }
    fn set_link_down(&self) {
        self.shared().update(|f| {
            f.link = Link::Down {
                since: SystemTime::now(),
                reason: "connection refused".into(),
            }
        });
    }
}

async fn start(live: impl FnOnce(&mut LiveConfig), srv: impl FnOnce(&mut ServerConfig)) -> Lv {
    let mut l = start_bare(live, srv).await;
    l.cs = l.t.core_server("default").await;
    fixture(&l.t, &l.cs).await;
    l
}

/// The endpoint with the simulated backend and an empty store.
async fn start_bare(live: impl FnOnce(&mut LiveConfig), srv: impl FnOnce(&mut ServerConfig)) -> Lv {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server = config(dir.path());
    srv(&mut cfg.server);
    cfg.live.backend = LiveBackend::Simulated;
    cfg.live.actions = LiveActions::All;
    cfg.live.simulated_call_duration = Duration::from_secs(60);
    live(&mut cfg.live);
    let l = Live::start(&cfg).await.unwrap();
    let handle = isymphony_sync::server::start_live(&cfg.server, None, None, l)
        .await
        .unwrap();
    let base = handle.base_url();
    let live = base.replace("api/resource", "rest/live");
    let t = TestServer {
        handle,
        dir,
        client: reqwest::Client::new(),
        base,
    };
    Lv {
        t,
        live,
        cs: String::new(),
    }
}

fn ext(n: &str, name: &str, peer: &str) -> Value {
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

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[track_caller]
fn assert_keys(v: &Value, want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(keys(v), want, "{v}");
}

const EXT: &[&str] = &[
    "id",
    "extensionNumber",
    "displayName",
    "configurationId",
    "permissionId",
];
const QUEUE: &[&str] = &[
    "id",
    "displayName",
    "identifier",
    "configurationId",
    "permissionId",
];
const AGENT: &[&str] = &["id", "paused", "state", "name", "dynamic"];
const USERF: &[&str] = &[
    "id",
    "configurationId",
    "userName",
    "displayedName",
    "permissionId",
];
const STATUS: &[&str] = &[
    "id",
    "configurationId",
    "name",
    "type",
    "note",
    "returnTime",
    "userCreated",
];
const SEGMENT: &[&str] = &[
    "id",
    "type",
    "callerId",
    "did",
    "onHold",
    "recording",
    "incoming",
    "x_relatedCallSegmentIds",
];
const ROOM: &[&str] = &[
    "id",
    "configurationId",
    "displayName",
    "identifier",
    "dialString",
    "userGenerated",
    "permissionId",
];

#[tokio::test]
async fn every_resource_answers_with_exactly_the_documented_fields() {
    let l = start(|_| {}, |_| {}).await;
    let exts = l.ok(&Lv::cs("extensions")).await;
    assert_eq!(exts.as_array().unwrap().len(), 3);
    for e in exts.as_array().unwrap() {
        assert_keys(e, EXT);
        assert_eq!(e["configurationId"], e["permissionId"]);
    }
    assert_eq!(exts[0]["extensionNumber"], "1001");
    assert_eq!(exts[0]["displayName"], "Front Desk");
    assert_eq!(exts[0]["configurationId"], "e1001");
    let e1 = exts[0]["id"].as_str().unwrap().to_string();
    assert_keys(&l.ok(&Lv::cs(&format!("extensions/{e1}"))).await, EXT);

    let queues = l.ok(&Lv::cs("queues")).await;
    assert_eq!(
        queues.as_array().unwrap().len(),
        1,
        "disabled queue 401 hidden"
    );
    assert_keys(&queues[0], QUEUE);
    expect(l.get(&Lv::cs("queues/getByName/401")).await, 404, "");
    let q = Lv::cs("queues/getByName/400");
    expect(
        l.post(&format!("{q}/login"), json!({"extensionNumber": "1001"}))
            .await,
        204,
        "",
    );
    let agents = l.ok(&format!("{q}/agents")).await;
    assert_keys(&agents[0], AGENT);
    assert_eq!(agents[0]["name"], "Front Desk");
    assert_eq!(agents[0]["state"], "NOT_INUSE");
    assert_eq!(agents[0]["dynamic"], true);
    let a = agents[0]["id"].as_str().unwrap().to_string();
    assert_keys(&l.ok(&format!("{q}/agents/{a}")).await, AGENT);
    let stats = l.ok(&format!("{q}/agents/{a}/statistics")).await;
    assert_keys(
        &stats,
        &["id", "callsTaken", "lastCall", "lastPause", "loginTime"],
    );
    for sp in ["agents", "agent"] {
        let e = l.ok(&format!("{q}/{sp}/{a}/extension")).await;
        assert_eq!(e["id"], json!(e1));
    }
    let ea = l.ok(&Lv::cs("extensions/getByName/1001/agents")).await;
    assert_eq!(ea[0]["id"], json!(a));

    let users = l.ok(&Lv::cs("users")).await;
    assert_keys(&users[0], USERF);
    assert_eq!(users[0]["userName"], "alice");
    assert_eq!(users[0]["displayedName"], "ALICE");
    let u = Lv::cs("users/getByName/alice");
    assert_eq!(l.ok(&format!("{u}/logins")).await, json!([]));
    let st = l.ok(&format!("{u}/status")).await;
    assert_keys(&st, STATUS);
    assert_eq!(
        (st["type"].clone(), st["returnTime"].clone()),
        (json!("available"), json!(-1))
    );
    for sp in ["users", "user"] {
        let ue = l
            .ok(&Lv::cs(&format!("{sp}/getByName/alice/extensions")))
            .await;
        assert_eq!(ue.as_array().unwrap().len(), 1);
        assert_eq!(ue[0]["extensionNumber"], "1001");
    }

    let rooms = l.ok(&Lv::cs("conferences")).await;
    assert_keys(&rooms[0], ROOM);
    assert_eq!(rooms[0]["userGenerated"], false);
    assert_eq!(rooms[0]["displayName"], "Weekly sync");
    let r = rooms[0]["id"].as_str().unwrap();
    assert_eq!(l.ok(&Lv::cs(&format!("conferences/{r}"))).await, rooms[0]);
    assert_eq!(l.ok(&Lv::cs("conferences/getByName/8000")).await, rooms[0]);
    assert_eq!(
        l.ok(&Lv::cs("conferences/getByName/8000/callSegments"))
            .await,
        json!([])
    );

    let e = Lv::cs("extensions/getByName/1001");
    expect(
        l.post(&format!("{e}/originate"), json!({"destination": "1002"}))
            .await,
        204,
        "",
    );
    let segs = l.ok(&Lv::cs("callSegments")).await;
    assert_eq!(segs.as_array().unwrap().len(), 2, "{segs}");
    for s in segs.as_array().unwrap() {
        assert_keys(s, SEGMENT);
        assert_keys(&s["callerId"], &["id", "name", "number"]);
        assert_eq!(s["type"], "INTERNAL");
        assert_eq!(s["x_relatedCallSegmentIds"].as_array().unwrap().len(), 1);
    }
    assert_eq!(segs[0]["callerId"]["number"], "1001");
    assert_eq!(
        (segs[0]["incoming"].clone(), segs[1]["incoming"].clone()),
        (json!(false), json!(true))
    );
    let s0 = segs[0]["id"].as_str().unwrap();
    assert_eq!(l.ok(&Lv::cs(&format!("callSegments/{s0}"))).await, segs[0]);
    let mine = l.ok(&format!("{e}/callSegments")).await;
    assert_eq!(mine, json!([segs[0]]));
    let theirs = l
        .ok(&Lv::cs("extensions/getByName/1002/callSegments"))
        .await;
    assert_eq!(theirs, json!([segs[1]]));
    assert_eq!(l.ok(&format!("{q}/callSegments")).await, json!([]));
    expect(
        l.get(&Lv::cs("callSegments/00000000-0000-4000-8000-000000000000"))
            .await,
        404,
        "",
    );
}

#[tokio::test]
async fn by_name_and_ids_mix_and_unknown_objects_are_404() {
    let l = start(|_| {}, |_| {}).await;
    let by_name = l
        .ok("coreServers/getByName/default/extensions/getByName/1002")
        .await;
    let id = by_name["id"].as_str().unwrap();
    let cs = &l.cs;
    let mixed = [
        format!("coreServers/{cs}/extensions/getByName/1002"),
        format!("coreServers/getByName/default/extensions/{id}"),
        format!("coreServers/{cs}/extensions/{id}/"),
    ];
    for p in mixed {
        assert_eq!(l.ok(&p).await, by_name, "{p}");
    }
    for p in [
        "coreServers/getByName/nope/extensions".to_string(),
        "coreServers/nope/users".into(),
        Lv::cs("extensions/getByName/9999"),
        Lv::cs("extensions/3b1f6c2e-8d0a-4c55-9e7b-1a2b3c4d5e6f"),
        Lv::cs("users/getByName/nobody/status"),
        Lv::cs("queues/getByName/400/agents/3b1f6c2e-8d0a-4c55-9e7b-1a2b3c4d5e6f"),
        Lv::cs("conferences/getByName/9000"),
        Lv::cs("nothing"),
    ] {
        expect(l.get(&p).await, 404, "");
    }
    let resp =
        l.t.client
            .get(format!("{}{}", l.live, Lv::cs("extensions")))
            .send()
            .await
            .unwrap();
    assert_eq!(
        resp.status(),
        401,
        "no credentials: the config API's challenge"
    );
}

#[tokio::test]
async fn live_ids_are_stable_new_on_recreate_and_follow_the_store_at_once() {
    let l = start(|_| {}, |_| {}).await;
    let list = || async { l.ok(&Lv::cs("extensions")).await };
    let first = list().await;
    assert_eq!(first, list().await, "stable across reads");
    let ex = format!("asterisk/{}/extensions", l.cs);
    // An update keeps the live id.
    let mut e = ext("1002", "Back Office 2", "Local/1002@sim-phone");
    e.as_object_mut().unwrap().remove("id");
    expect(l.t.put(&format!("{ex}/e1002"), e).await, 204, "");
    let after = list().await;
    assert_eq!(after[1]["id"], first[1]["id"]);
    assert_eq!(after[1]["displayName"], "Back Office 2");
    // Delete: gone on the very next request; re-create with the same config id: a new live id.
    expect(l.t.delete(&format!("{ex}/e1002")).await, 204, "");
    let gone = list().await;
    assert!(gone
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["configurationId"] != "e1002"));
    expect(
        l.t.post(&ex, ext("1002", "Back Office", "Local/1002@sim-phone"))
            .await,
        204,
        "",
    );
    let back = list().await;
    let again = back
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["configurationId"] == "e1002")
        .unwrap();
    assert_ne!(again["id"], first[1]["id"], "re-created: new live id");
    assert_eq!(again["configurationId"], "e1002");
    expect(
        l.t.post(&ex, ext("1004", "New", "PJSIP/1004")).await,
        204,
        "",
    );
    assert_eq!(
        l.ok(&Lv::cs("extensions/getByName/1004")).await["configurationId"],
        "e1004"
    );
}

#[tokio::test]
async fn licence_restricts_and_filters() {
    let l = start(|c| c.licensed = false, |_| {}).await;
    for p in [
        "extensions",
        "extensions/getByName/1001/agents",
        "queues",
        "queues/getByName/400/agents",
        "callSegments",
        "users/getByName/alice/status",
        "users/getByName/alice/extensions",
    ] {
        expect(l.get(&Lv::cs(p)).await, 403, "licensed = false");
    }
    let p = Lv::cs("extensions/getByName/1001/dnd/enable");
    expect(l.post_empty(&p).await, 403, "licens");
    for p in ["users", "users/getByName/alice/logins", "conferences"] {
        l.ok(&Lv::cs(p)).await;
    }
    expect(
        l.get("coreServers/getByName/nope/extensions").await,
        404,
        "",
    );

    let l = start(|_| {}, |s| s.licensed_full_users = Some(5)).await;
    let exts = l.ok(&Lv::cs("extensions")).await;
    let numbers: Vec<&Value> = exts
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["extensionNumber"])
        .collect();
    assert_eq!(numbers, [&json!("1001")], "only extensions of full users");
    expect(l.get(&Lv::cs("extensions/getByName/1002")).await, 404, "");
    expect(
        l.get(&Lv::cs("users/getByName/bob/status")).await,
        403,
        "licens",
    );
    let q = Lv::cs("queues/getByName/400");
    expect(
        l.post(&format!("{q}/login"), json!({"extensionNumber": "1002"}))
            .await,
        422,
        "extensionNumber",
    );
    // A lite user's extension logged in on the PBX itself is not listed as an agent.
    l.shared().update(|f| {
        let m = member("400", "Local/1002@from-queue/n", true);
        f.members.insert(("400".into(), m.interface.clone()), m);
    });
    assert_eq!(l.ok(&format!("{q}/agents")).await, json!([]));
}

fn member(queue: &str, interface: &str, dynamic: bool) -> Member {
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

#[tokio::test]
async fn actions_change_the_simulated_state() {
    let l = start(
        |c| c.simulated_call_duration = Duration::from_millis(300),
        |_| {},
    )
    .await;
    let e = Lv::cs("extensions/getByName/1001");
    expect(
        l.post(&format!("{e}/dnd"), json!({"enabled": true})).await,
        204,
        "",
    );
    assert!(l.shared().read(|f| f.dnd.contains("1001")));
    expect(l.post_empty(&format!("{e}/dnd/disable")).await, 204, "");
    assert!(l.shared().read(|f| f.dnd.is_empty()));
    expect(l.post_empty(&format!("{e}/dnd/enable")).await, 204, "");
    assert!(l.shared().read(|f| f.dnd.contains("1001")));

    let q = Lv::cs("queues/getByName/400");
    let eid = l.ok(&e).await["id"].clone();
    let login = json!({"extensionId": eid, "penalty": 2, "paused": true});
    expect(l.post(&format!("{q}/login"), login.clone()).await, 204, "");
    expect(
        l.post(&format!("{q}/login"), login).await,
        422,
        "already logged in",
    );
    let a = l.ok(&format!("{q}/agents")).await[0].clone();
    assert_eq!(a["paused"], true);
    let ap = format!("{q}/agents/{}", a["id"].as_str().unwrap());
    expect(l.post_empty(&format!("{ap}/unpause")).await, 204, "");
    assert_eq!(l.ok(&ap).await["paused"], false);
    expect(
        l.post(
            &format!("{ap}/pause"),
            json!({"reason": "Mittagspause – zurück"}),
        )
        .await,
        204,
        "",
    );
    assert_eq!(l.ok(&ap).await["paused"], true);
    expect(
        l.post(&format!("{ap}/pause"), json!({"paused": false}))
            .await,
        204,
        "",
    );
    assert_eq!(l.ok(&ap).await["paused"], false);
    expect(
        l.post(&format!("{ap}/penalty"), json!({"penalty": 7}))
            .await,
        204,
        "",
    );
    assert_eq!(
        l.shared()
            .read(|f| f.members.values().next().map(|m| m.penalty)),
        Some(7)
    );
    expect(l.post_empty(&format!("{ap}/logout")).await, 204, "");
    expect(l.get(&ap).await, 404, "");
    expect(
        l.post(&format!("{q}/logout"), json!({"extensionNumber": "1001"}))
            .await,
        422,
        "not logged in",
    );
    expect(
        l.post(&format!("{q}/login"), json!({"extensionNumber": "1001"}))
            .await,
        204,
        "",
    );
    expect(
        l.post(&format!("{q}/logout"), json!({"extensionNumber": "1001"}))
            .await,
        204,
        "",
    );

    // A static member cannot be logged out, by either route.
    l.shared().update(|f| {
        let m = member("400", "Local/1003@from-queue/n", false);
        f.members.insert(("400".into(), m.interface.clone()), m);
    });
    let s = l.ok(&format!("{q}/agents")).await[0].clone();
    assert_eq!(s["dynamic"], false);
    let sp = format!("{q}/agents/{}/logout", s["id"].as_str().unwrap());
    expect(l.post_empty(&sp).await, 422, "static");
    expect(
        l.post(&format!("{q}/logout"), json!({"extensionNumber": "1003"}))
            .await,
        422,
        "static",
    );

    // Originate: one segment per extension, bridged; they end after the call time.
    expect(
        l.post(&format!("{e}/originate"), json!({"destination": "1003"}))
            .await,
        204,
        "",
    );
    let segs = l.ok(&Lv::cs("callSegments")).await;
    assert_eq!(segs.as_array().unwrap().len(), 2);
    let on1003 = l
        .ok(&Lv::cs("extensions/getByName/1003/callSegments"))
        .await;
    assert_eq!(on1003[0]["type"], "INTERNAL");
    // Transfer the 1003 leg to 1002: the 1001 leg hangs up, 1002 rings.
    let t = Lv::cs(&format!(
        "callSegments/{}/transfer",
        on1003[0]["id"].as_str().unwrap()
    ));
    expect(l.post(&t, json!({"destination": "1002"})).await, 204, "");
    assert_eq!(l.ok(&format!("{e}/callSegments")).await, json!([]));
    assert_eq!(
        l.ok(&Lv::cs("extensions/getByName/1002/callSegments"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(l.ok(&Lv::cs("callSegments")).await, json!([]), "calls end");
    expect(l.post(&t, json!({"destination": "1002"})).await, 404, "");

    // Status set: kept, and published as the presence of the user's extensions.
    let u = Lv::cs("users/getByName/alice/status");
    let set = json!({"name": "At lunch", "type": "away", "note": "back at 13:30", "returnTime": 1718013000000i64});
    expect(l.post(&format!("{u}/set"), set).await, 204, "");
    let st = l.ok(&u).await;
    assert_eq!(
        (
            st["name"].clone(),
            st["type"].clone(),
            st["userCreated"].clone()
        ),
        (json!("At lunch"), json!("away"), json!(true))
    );
    assert_eq!(st["returnTime"], json!(1718013000000i64));
    let p = l.shared().read(|f| f.presence.get("1001").cloned());
    assert_eq!(p, Some(("away".to_string(), "back at 13:30".to_string())));
}

/// (path, body, field the 422 must name).
fn bad_bodies() -> Vec<(String, Value, &'static str)> {
    let e = Lv::cs("extensions/getByName/1001");
    let q = Lv::cs("queues/getByName/400");
    let u = Lv::cs("users/getByName/alice/status/set");
    let o = format!("{e}/originate");
    let big = "1".repeat(65536);
    vec![
        (o.clone(), json!({}), "destination"),
        (o.clone(), json!({"destination": "  "}), "destination"),
        (o.clone(), json!({"destination": 1002}), "destination"),
        (o.clone(), json!({"destination": big}), "destination"),
        (
            o.clone(),
            json!({"destination": "1002", "autoAnswer": "yes"}),
            "autoAnswer",
        ),
        (format!("{e}/dnd"), json!({}), "enabled"),
        (format!("{e}/dnd"), json!({"enabled": "true"}), "enabled"),
        (format!("{q}/login"), json!({}), "extensionId"),
        (
            format!("{q}/login"),
            json!({"extensionId": "x", "extensionNumber": "1001"}),
            "extensionNumber",
        ),
        (
            format!("{q}/login"),
            json!({"extensionNumber": ""}),
            "extensionNumber",
        ),
        (
            format!("{q}/login"),
            json!({"extensionNumber": "9999"}),
            "extensionNumber",
        ),
        (
            format!("{q}/login"),
            json!({"extensionNumber": 1001}),
            "extensionNumber",
        ),
        (
            format!("{q}/login"),
            json!({"extensionNumber": "1001", "penalty": -1}),
            "penalty",
        ),
        (
            format!("{q}/login"),
            json!({"extensionNumber": "1001", "penalty": 1.5}),
            "penalty",
        ),
        (
            format!("{q}/login"),
            json!({"extensionNumber": "1001", "paused": 1}),
            "paused",
        ),
        (format!("{q}/logout"), json!({}), "extensionId"),
        (u.clone(), json!({"type": "away"}), "name"),
        (u.clone(), json!({"name": "x", "type": "busy"}), "type"),
        (u.clone(), json!({"name": "x"}), "type"),
        (
            u.clone(),
            json!({"name": "x", "type": "away", "note": 5}),
            "note",
        ),
        (
            u.clone(),
            json!({"name": "x", "type": "away", "returnTime": "soon"}),
            "returnTime",
        ),
        (
            u.clone(),
            json!({"name": "x", "type": "away", "returnTime": -2}),
            "returnTime",
        ),
        (u, json!(["not", "an", "object"]), "object"),
    ]
}

#[tokio::test]
async fn bad_bodies_answer_422_naming_the_field() {
    let l = start(|_| {}, |_| {}).await;
    for (path, body, field) in bad_bodies() {
        let got = l.post(&path, body.clone()).await;
        assert_eq!(got.0, 422, "{path} {body}: {}", got.1);
        let msg = got.1["message"].as_str().unwrap();
        assert!(msg.contains(field), "{path} {body}: {msg}");
    }
    // Agent actions.
    let q = Lv::cs("queues/getByName/400");
    expect(
        l.post(&format!("{q}/login"), json!({"extensionNumber": "1001"}))
            .await,
        204,
        "",
    );
    let a = l.ok(&format!("{q}/agents")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ap = format!("{q}/agents/{a}");
    for (act, body, field) in [
        ("penalty", json!({}), "penalty"),
        ("penalty", json!({"penalty": -3}), "penalty"),
        ("penalty", json!({"penalty": "3"}), "penalty"),
        ("penalty", json!({"penalty": 1e12}), "penalty"),
        ("pause", json!({"paused": "yes"}), "paused"),
        ("pause", json!({"reason": 4}), "reason"),
    ] {
        expect(l.post(&format!("{ap}/{act}"), body).await, 422, field);
    }
    let segs = Lv::cs("callSegments/x/transfer");
    expect(l.post(&segs, json!({})).await, 422, "destination");
    let resp =
        l.t.client
            .post(format!(
                "{}{}",
                l.live,
                Lv::cs("extensions/getByName/1001/dnd")
            ))
            .basic_auth(USER, Some(PASS))
            .body("{not json")
            .send()
            .await
            .unwrap();
    assert_eq!(
        resp.status(),
        412,
        "malformed JSON: the config API's answer"
    );
}

#[tokio::test]
async fn hostile_values_reach_no_action() {
    let l = start(|_| {}, |_| {}).await;
    let e = Lv::cs("extensions/getByName/1001");
    let q = Lv::cs("queues/getByName/400");
    expect(
        l.post(&format!("{q}/login"), json!({"extensionNumber": "1001"}))
            .await,
        204,
        "",
    );
    let a = l.ok(&format!("{q}/agents")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect(
        l.post(&format!("{e}/originate"), json!({"destination": "1002"}))
            .await,
        204,
        "",
    );
    let s = l.ok(&Lv::cs("callSegments")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = l.shared().read(|f| f.clone());
    let hostile = [
        "1002\r\nAction: Originate",
        "1002\nX",
        "1002\r",
        "a\0b",
        "a\x1bb",
        "a\u{7f}b",
        "a\u{85}b",
        &"9".repeat(65536),
    ];
    let fields: Vec<(String, &str, Value)> = vec![
        (format!("{e}/originate"), "destination", json!({})),
        (
            Lv::cs(&format!("callSegments/{s}/transfer")),
            "destination",
            json!({}),
        ),
        (format!("{q}/agents/{a}/pause"), "reason", json!({})),
        (
            Lv::cs("users/getByName/alice/status/set"),
            "name",
            json!({"type": "away"}),
        ),
        (
            Lv::cs("users/getByName/alice/status/set"),
            "note",
            json!({"name": "x", "type": "away"}),
        ),
        (format!("{q}/login"), "extensionNumber", json!({})),
    ];
    for (path, field, base) in &fields {
        for v in hostile {
            let mut b = base.clone();
            b[*field] = json!(v);
            let got = l.post(path, b).await;
            assert_eq!(
                got.0,
                422,
                "{path} {field}={:?}: {}",
                &v[..v.len().min(20)],
                got.1
            );
            assert!(got.1["message"].as_str().unwrap().contains(field));
        }
    }
    // Unicode: refused where Asterisk wants a dial string, kept where the field is text.
    for (path, field, base) in &fields[..2] {
        let mut b = base.clone();
        b[*field] = json!("１００２");
        expect(l.post(path, b).await, 422, field);
    }
    assert_eq!(
        l.shared().read(|f| f.clone()),
        before,
        "no action reached the backend"
    );
    let mut b = json!({"name": "Mittag – zurück ☕", "type": "away", "note": "日本語"});
    expect(l.post(&fields[3].0, b.take()).await, 204, "");
}

#[tokio::test]
async fn actions_setting_off_internal_all() {
    let l = start(|c| c.actions = LiveActions::Off, |_| {}).await;
    let e = Lv::cs("extensions/getByName/1001");
    expect(
        l.post(&format!("{e}/originate"), json!({"destination": "1002"}))
            .await,
        403,
        "[live] actions",
    );
    expect(
        l.post_empty(&format!("{e}/dnd/enable")).await,
        403,
        "[live] actions",
    );
    l.ok(&Lv::cs("extensions")).await;

    let l = start(|c| c.actions = LiveActions::Internal, |_| {}).await;
    let o = format!("{e}/originate");
    for dest in ["1002", "400", "8000", "70", "71", "78"] {
        expect(l.post(&o, json!({"destination": dest})).await, 204, dest);
    }
    for dest in ["+15555550123", "401", "79", "900"] {
        expect(
            l.post(&o, json!({"destination": dest})).await,
            403,
            "internal",
        );
    }
    let s = l.ok(&Lv::cs("callSegments")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Lv::cs(&format!("callSegments/{s}/transfer"));
    expect(
        l.post(&t, json!({"destination": "0044123"})).await,
        403,
        "internal",
    );
    expect(l.post(&t, json!({"destination": "1003"})).await, 204, "");

    let l = start(|c| c.actions = LiveActions::All, |_| {}).await;
    expect(
        l.post(&o, json!({"destination": "+15555550123"})).await,
        204,
        "",
    );
    let segs = l.ok(&Lv::cs("callSegments")).await;
    let types: BTreeSet<&str> = segs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, BTreeSet::from(["EXTERNAL", "INTERNAL"]));
}

#[tokio::test]
async fn link_down_answers_503_and_configuration_keeps_answering() {
    let l = start(|_| {}, |_| {}).await;
    l.set_link_down();
    for p in [
        "callSegments",
        "extensions/getByName/1001/agents",
        "extensions/getByName/1001/callSegments",
        "queues/getByName/400/agents",
        "queues/getByName/400/callSegments",
        "conferences/getByName/8000/callSegments",
    ] {
        let url = format!("{}{}", l.live, Lv::cs(p));
        let r =
            l.t.client
                .get(url)
                .basic_auth(USER, Some(PASS))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 503, "{p}");
        assert_eq!(r.headers()["retry-after"], "5");
        let v: Value = r.json().await.unwrap();
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("AMI") && msg.contains("since") && msg.contains("connection refused"),
            "{msg}"
        );
    }
    let e = Lv::cs("extensions/getByName/1001");
    expect(l.post_empty(&format!("{e}/dnd/enable")).await, 503, "since");
    expect(
        l.post(&format!("{e}/originate"), json!({"destination": "1002"}))
            .await,
        503,
        "AMI",
    );
    let set = json!({"name": "x", "type": "away"});
    expect(
        l.post(&Lv::cs("users/getByName/alice/status/set"), set)
            .await,
        503,
        "AMI",
    );
    for p in [
        "extensions",
        "queues",
        "users",
        "conferences",
        "users/getByName/alice/status",
    ] {
        l.ok(&Lv::cs(p)).await;
    }
}

#[tokio::test]
async fn acl_and_off_backend() {
    let l = start_bare(|_| {}, |s| s.acl = vec!["10.0.0.0/8".parse().unwrap()]).await;
    // Outside the ACL the connection is refused at accept, for both APIs alike.
    for url in [
        format!("{}{}", l.live, Lv::cs("users")),
        format!("{}server/brand", l.t.base),
    ] {
        let r =
            l.t.client
                .get(url)
                .basic_auth(USER, Some(PASS))
                .send()
                .await;
        assert!(r.is_err(), "outside the ACL: {r:?}");
    }

    let t = support::server::start().await;
    let live = t.base.replace("api/resource", "rest/live");
    let r = t
        .client
        .get(format!("{live}coreServers/x/users"))
        .basic_auth(USER, Some(PASS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "[live] backend = off: no Live API");
}
