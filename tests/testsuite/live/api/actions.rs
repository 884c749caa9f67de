//! POSTs: actions and their effect on the simulated state, 422s, hostile values, modes.

use super::{member, start, Lv};
use crate::support::server::{expect, PASS, USER};
use isymphony_sync::config::LiveActions;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

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
        l.post_ext(&format!("{q}/logout"), "1001").await,
        422,
        "not logged in",
    );
    expect(l.post_ext(&format!("{q}/login"), "1001").await, 204, "");
    expect(l.post_ext(&format!("{q}/logout"), "1001").await, 204, "");

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
        l.post_ext(&format!("{q}/logout"), "1003").await,
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

/// Log extension 1001 in to queue `q` (a Live API path): the live id of the queue's first
/// agent (1001 when the queue had none).
async fn log_in_1001(l: &Lv, q: &str) -> String {
    expect(l.post_ext(&format!("{q}/login"), "1001").await, 204, "");
    let agents = l.ok(&format!("{q}/agents")).await;
    let id = agents[0]["id"].as_str();
    id.unwrap_or_else(|| panic!("no agent id: {agents}"))
        .to_string()
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
    let a = log_in_1001(&l, &q).await;
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
    let a = log_in_1001(&l, &q).await;
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
