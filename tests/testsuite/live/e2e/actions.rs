//! Every Live API action over HTTP on the real Asterisk, each checked by its effect as
//! Asterisk itself reports it (points 1–5 and 8 of the brief).

use super::{cs, Ast, E2e, ALICE_STATUS, E1001, Q400, Q401};
use crate::support::server::expect;
use isymphony_sync::config::LiveActions;
use serde_json::{json, Value};

/// The segments the endpoint lists for extension `n`.
async fn ext_segments(e: &E2e, n: &str) -> Vec<Value> {
    let v = e
        .ok(&cs(&format!("extensions/getByName/{n}/callSegments")))
        .await;
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn originate_bridges_both_phones_and_shows_two_internal_segments() {
    let e = E2e::start(LiveActions::All, false).await;
    let mut ast = Ast::open(&e.ast).await;
    assert!(ast.channels().await.is_empty());
    e.originate(E1001, "1002").await;
    // Asterisk: a leg of 1001's phone and a leg of 1002's phone in one bridge.
    let mut chans: Vec<super::Chan>;
    eventually!(10, "1001 and 1002 bridged in CoreShowChannels", {
        chans = ast.channels().await;
        chans.iter().any(|a| {
            a.of("1001")
                && !a.bridge.is_empty()
                && chans.iter().any(|b| b.of("1002") && b.bridge == a.bridge)
        })
    });
    eprintln!("CoreShowChannels: {chans:#?}");
    let locals = chans
        .iter()
        .filter(|c| c.name.starts_with("Local/"))
        .count();
    assert_eq!(locals, 4, "both halves of both Local phones: {chans:?}");
    // The Live API: one INTERNAL segment per phone; the ;2 halves (the phones' own dialplan)
    // are Local plumbing, never segments.
    eventually!(5, "two segments", {
        e.ok(&cs("callSegments")).await.as_array().unwrap().len() == 2
    });
    let all = e.ok(&cs("callSegments")).await;
    let all = all.as_array().unwrap();
    assert!(all.iter().all(|s| s["type"] == "INTERNAL"), "{all:?}");
    let a = ext_segments(&e, "1001").await;
    let b = ext_segments(&e, "1002").await;
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?} {b:?}");
    assert_eq!(a[0]["type"], "INTERNAL");
    assert_eq!(b[0]["type"], "INTERNAL");
    assert_ne!(a[0]["id"], b[0]["id"]);
    let ids: Vec<&Value> = all.iter().map(|s| &s["id"]).collect();
    assert!(ids.contains(&&a[0]["id"]) && ids.contains(&&b[0]["id"]));
    assert_eq!(
        a[0]["x_relatedCallSegmentIds"],
        json!([b[0]["id"].clone()]),
        "the two segments are one call"
    );
    // One segment by id; 1003 has none.
    let one = e
        .ok(&cs(&format!(
            "callSegments/{}",
            a[0]["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(one, a[0]);
    assert!(ext_segments(&e, "1003").await.is_empty());
}

#[tokio::test]
async fn dnd_on_and_off_is_the_astdb_key() {
    let e = E2e::start(LiveActions::All, false).await;
    let mut ast = Ast::open(&e.ast).await;
    assert_eq!(ast.dnd("1001").await, None);
    let dnd = format!("{E1001}/dnd");
    expect(e.post(&dnd, json!({"enabled": true})).await, 204, "");
    assert_eq!(ast.dnd("1001").await.as_deref(), Some("YES"));
    expect(e.post(&dnd, json!({"enabled": false})).await, 204, "");
    assert_eq!(ast.dnd("1001").await, None);
    expect(e.post_empty(&format!("{dnd}/enable")).await, 204, "");
    assert_eq!(ast.dnd("1001").await.as_deref(), Some("YES"));
    assert_eq!(ast.dnd("1002").await, None, "only 1001");
    expect(e.post_empty(&format!("{dnd}/disable")).await, 204, "");
    assert_eq!(ast.dnd("1001").await, None);
    // Off twice is still off.
    expect(e.post_empty(&format!("{dnd}/disable")).await, 204, "");
    assert_eq!(ast.dnd("1001").await, None);
}

const L1001: &str = "Local/1001@from-queue/n";
const L1002: &str = "Local/1002@from-queue/n";
const L1003: &str = "Local/1003@from-queue/n";

#[tokio::test]
async fn queue_login_pause_penalty_logout_as_asterisk_sees_them() {
    let e = E2e::start(LiveActions::All, false).await;
    let mut ast = Ast::open(&e.ast).await;
    let login = format!("{Q400}/login");
    // By number and by live id.
    expect(
        e.post(&login, json!({"extensionNumber": "1001"})).await,
        204,
        "",
    );
    let m = ast
        .member("400", L1001)
        .await
        .expect("QueueStatus has 1001");
    assert_eq!(
        (m.str("Membership"), m.str("Name"), m.str("Paused")),
        ("dynamic", "Front Desk", "0")
    );
    let id1002 = e.ok(&cs("extensions/getByName/1002")).await["id"].clone();
    expect(
        e.post(
            &login,
            json!({"extensionId": id1002, "penalty": 2, "paused": true}),
        )
        .await,
        204,
        "",
    );
    let m = ast
        .member("400", L1002)
        .await
        .expect("QueueStatus has 1002");
    assert_eq!(
        (m.str("Membership"), m.str("Penalty"), m.str("Paused")),
        ("dynamic", "2", "1")
    );
    // The agents as the Live API shows them (once the events are in).
    eventually!(5, "two agents of 400", e.agents(Q400).await == 2);
    let agents = e.ok(&format!("{Q400}/agents")).await;
    for a in agents.as_array().unwrap() {
        assert_eq!(a["dynamic"], true, "{a}");
        assert!(a["state"].is_string(), "{a}");
        let paused = a["name"] == "Back Office";
        assert_eq!(a["paused"], paused, "{a}");
    }
    // A second login of either: 422 naming the field used.
    expect(
        e.post(&login, json!({"extensionNumber": "1001"})).await,
        422,
        "extensionNumber",
    );
    expect(
        e.post(&login, json!({"extensionId": id1002})).await,
        422,
        "extensionId",
    );
    let a1 = e.agent_id(Q400, "Front Desk").await;
    let ap = format!("{Q400}/agents/{a1}");
    assert_eq!(e.ok(&ap).await["paused"], false);
    // Pause with a reason, unpause, penalty.
    expect(
        e.post(&format!("{ap}/pause"), json!({"reason": "lunch"}))
            .await,
        204,
        "",
    );
    let m = ast.member("400", L1001).await.expect("member");
    assert_eq!((m.str("Paused"), m.str("PausedReason")), ("1", "lunch"));
    eventually!(
        5,
        "paused in the Live API",
        e.ok(&ap).await["paused"] == true
    );
    expect(e.post_empty(&format!("{ap}/unpause")).await, 204, "");
    let m = ast.member("400", L1001).await.expect("member");
    assert_eq!(m.str("Paused"), "0");
    eventually!(
        5,
        "unpaused in the Live API",
        e.ok(&ap).await["paused"] == false
    );
    expect(
        e.post(
            &format!("{ap}/pause"),
            json!({"paused": true, "reason": "Pause ☕"}),
        )
        .await,
        204,
        "",
    );
    let m = ast.member("400", L1001).await.expect("member");
    assert_eq!((m.str("Paused"), m.str("PausedReason")), ("1", "Pause ☕"));
    expect(
        e.post(&format!("{ap}/pause"), json!({"paused": false}))
            .await,
        204,
        "",
    );
    assert_eq!(ast.member("400", L1001).await.unwrap().str("Paused"), "0");
    expect(
        e.post(&format!("{ap}/penalty"), json!({"penalty": 5}))
            .await,
        204,
        "",
    );
    assert_eq!(ast.member("400", L1001).await.unwrap().str("Penalty"), "5");
    // Logout by agent, then by queue (by number).
    expect(e.post_empty(&format!("{ap}/logout")).await, 204, "");
    assert!(ast.member("400", L1001).await.is_none(), "1001 gone");
    eventually!(5, "the agent gone", e.get(&ap).await.0 == 404);
    expect(e.post_empty(&format!("{ap}/pause")).await, 404, "");
    expect(
        e.post(
            &format!("{Q400}/logout"),
            json!({"extensionNumber": "1002"}),
        )
        .await,
        204,
        "",
    );
    assert!(ast.member("400", L1002).await.is_none(), "1002 gone");
    // Logout by queue with the live id, after a new login.
    expect(
        e.post(&login, json!({"extensionNumber": "1002"})).await,
        204,
        "",
    );
    eventually!(5, "1002 logged in again", e.agents(Q400).await == 1);
    expect(
        e.post(&format!("{Q400}/logout"), json!({"extensionId": id1002}))
            .await,
        204,
        "",
    );
    assert!(ast.members("400").await.is_empty(), "nobody in 400");
    eventually!(5, "no agents of 400", {
        e.ok(&format!("{Q400}/agents")).await == json!([])
    });
    expect(
        e.post(
            &format!("{Q400}/logout"),
            json!({"extensionNumber": "1002"}),
        )
        .await,
        422,
        "extensionNumber",
    );
    // 401's static member: shown, and never logged out.
    let agents = e.ok(&format!("{Q401}/agents")).await;
    let s = &agents.as_array().unwrap()[0];
    assert_eq!(s["dynamic"], false, "{s}");
    assert!(s["state"].is_string() && s["paused"] == false, "{s}");
    let sid = s["id"].as_str().unwrap();
    expect(
        e.post_empty(&format!("{Q401}/agents/{sid}/logout")).await,
        422,
        "static",
    );
    let got = expect(
        e.post(
            &format!("{Q401}/logout"),
            json!({"extensionNumber": "1003"}),
        )
        .await,
        422,
        "static",
    );
    assert!(got["message"].as_str().unwrap().contains("extensionNumber"));
    let m = ast.member("401", L1003).await.expect("still a member");
    assert_eq!(m.str("Membership"), "static");
    // The extension's own agents.
    let mine = e.ok(&cs("extensions/getByName/1003/agents")).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
}

#[tokio::test]
async fn transfer_a_live_segment_into_the_conference_and_a_gone_one_is_404() {
    let e = E2e::start(LiveActions::All, false).await;
    let mut ast = Ast::open(&e.ast).await;
    e.originate(E1001, "9999").await;
    // 1001 answered and its call is at 9999 (answered, waiting).
    let mut leg: Option<super::Chan>;
    eventually!(10, "1001's leg at 9999", {
        leg = ast
            .channels()
            .await
            .into_iter()
            .find(|c| c.of("1001") && c.name.ends_with(";1") && c.exten == "9999");
        leg.as_ref().is_some_and(|c| c.state == "6")
    });
    let leg = leg.unwrap();
    eventually!(
        5,
        "1001's segment",
        !ext_segments(&e, "1001").await.is_empty()
    );
    let segs = ext_segments(&e, "1001").await;
    assert_eq!(segs.len(), 1, "{segs:?}");
    let id = segs[0]["id"].as_str().unwrap().to_string();
    let transfer = cs(&format!("callSegments/{id}/transfer"));
    expect(
        e.post(&transfer, json!({"destination": "8000"})).await,
        204,
        "",
    );
    let mut listed: Vec<String>;
    eventually!(10, "ConfbridgeList 8000 shows the channel", {
        listed = ast.conference("8000").await;
        !listed.is_empty()
    });
    assert_eq!(listed, vec![leg.name.clone()], "the transferred channel");
    // Hung up: its segment goes, and a transfer of it is 404.
    ast.hangup(&leg.name).await;
    eventually!(5, "the segment gone", {
        e.get(&cs(&format!("callSegments/{id}"))).await.0 == 404
    });
    expect(
        e.post(&transfer, json!({"destination": "8000"})).await,
        404,
        "",
    );
    assert!(ast.conference("8000").await.is_empty());
    assert!(ast.channels().await.is_empty(), "nothing left");
}

#[tokio::test]
async fn user_status_is_kept_and_published_as_custom_presence() {
    let e = E2e::start(LiveActions::All, false).await;
    let mut ast = Ast::open(&e.ast).await;
    let note = "Zurück um 13:30 – Mittag";
    let set = json!({"name": "At lunch", "type": "away", "note": note,
                     "returnTime": 1718013000000i64});
    expect(e.post(&format!("{ALICE_STATUS}/set"), set).await, 204, "");
    let st = e.ok(ALICE_STATUS).await;
    assert_eq!(
        (&st["name"], &st["type"], &st["note"], &st["userCreated"]),
        (
            &json!("At lunch"),
            &json!("away"),
            &json!(note),
            &json!(true)
        )
    );
    assert_eq!(st["returnTime"], json!(1718013000000i64));
    // Alice manages 1001 and 1003: both publish her status; 1002 (bob) does not.
    let p = ast.presence().await;
    for ext in ["1001", "1003"] {
        let who = format!("CustomPresence:{ext}");
        let got = p
            .iter()
            .find(|(n, _, _)| *n == who)
            .unwrap_or_else(|| panic!("{who} in {p:?}"));
        assert_eq!((got.1.as_str(), got.2.as_str()), ("away", note), "{who}");
    }
    assert!(
        !p.iter()
            .any(|(n, s, _)| n == "CustomPresence:1002" && s == "away"),
        "{p:?}"
    );
    // Back: available, no note.
    let set = json!({"name": "Available", "type": "available"});
    expect(e.post(&format!("{ALICE_STATUS}/set"), set).await, 204, "");
    assert_eq!(e.ok(ALICE_STATUS).await["type"], "available");
    let p = ast.presence().await;
    let got = p
        .iter()
        .find(|(n, _, _)| n == "CustomPresence:1001")
        .expect("listed");
    assert_eq!((got.1.as_str(), got.2.as_str()), ("available", ""));
}

#[tokio::test]
async fn actions_internal_refuses_unconfigured_destinations() {
    let e = E2e::start(LiveActions::Internal, false).await;
    let mut ast = Ast::open(&e.ast).await;
    let o = format!("{E1001}/originate");
    for dest in ["+15555550123", "9999", "0044123456"] {
        expect(
            e.post(&o, json!({"destination": dest})).await,
            403,
            "internal",
        );
    }
    assert!(ast.channels().await.is_empty(), "no call placed");
    expect(e.post(&o, json!({"destination": "1002"})).await, 204, "");
    eventually!(10, "1001 and 1002 bridged", {
        let chans = ast.channels().await;
        chans.iter().any(|a| {
            a.of("1001")
                && !a.bridge.is_empty()
                && chans.iter().any(|b| b.of("1002") && b.bridge == a.bridge)
        })
    });
}

/// A call into queue 401 reaches its static member through FreePBX-style
/// `Local/1003@from-queue/n` legs: Asterisk has them, the Live API never shows them.
#[tokio::test]
async fn queue_plumbing_legs_are_not_segments() {
    let e = E2e::start(LiveActions::All, false).await;
    let mut ast = Ast::open(&e.ast).await;
    let o = cs("extensions/getByName/1002/originate");
    expect(e.post(&o, json!({"destination": "401"})).await, 204, "");
    let mut chans: Vec<super::Chan>;
    eventually!(15, "1002 bridged with 1003 through the queue", {
        chans = ast.channels().await;
        chans.iter().any(|a| {
            a.of("1002")
                && !a.bridge.is_empty()
                && chans
                    .iter()
                    .any(|b| b.name.contains("@from-queue-") && b.bridge == a.bridge)
        }) && chans.iter().any(|c| c.of("1003"))
    });
    let plumbing = chans
        .iter()
        .filter(|c| c.name.starts_with("Local/1003@from-queue-"))
        .count();
    assert_eq!(plumbing, 2, "Asterisk has the queue legs: {chans:?}");
    eventually!(5, "one segment on 1002 and one on 1003", {
        ext_segments(&e, "1002").await.len() == 1 && ext_segments(&e, "1003").await.len() == 1
    });
    let all = e.ok(&cs("callSegments")).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "only the phones' legs, no from-queue legs: {all}"
    );
}
