//! GETs: the documented field sets, getByName, ids, licence, link down, the gate.

use super::{assert_keys, ext, member, start, start_bare, Lv};
use crate::support::server::{expect, PASS, USER};
use serde_json::{json, Value};
use std::time::Duration;

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
    expect(l.post_ext(&format!("{q}/login"), "1001").await, 204, "");
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
    // The endpoint stops with its Live API backend.
    let Lv { t, .. } = l;
    tokio::time::timeout(Duration::from_secs(10), t.handle.shutdown())
        .await
        .unwrap();
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
        l.post_ext(&format!("{q}/login"), "1002").await,
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

    let t = crate::support::server::start().await;
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
