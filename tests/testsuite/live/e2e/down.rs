//! Asterisk stopped under the running endpoint: live state and every
//! action answer 503 naming the lost AMI connection and since when, with `Retry-After`;
//! the configuration-derived lists keep answering 200 with the same ids; when Asterisk is
//! back on the same port the API answers again, with new ids for call segments and agents.

use super::{cs, Ast, E2e, ALICE_STATUS, E1001, Q400, Q401};
use crate::support::server::expect;
use isymphony_sync::config::LiveActions;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::SystemTime;

/// The ids of the configuration-derived lists (they must survive the outage).
async fn config_ids(e: &E2e) -> Value {
    let mut out = serde_json::Map::new();
    for list in ["extensions", "queues", "users", "conferences"] {
        let v = e.ok(&cs(list)).await;
        let ids: Vec<Value> = v
            .as_array()
            .unwrap_or_else(|| panic!("{list}: {v}"))
            .iter()
            .map(|x| x["id"].clone())
            .collect();
        assert!(!ids.is_empty(), "{list}");
        out.insert(list.into(), Value::Array(ids));
    }
    Value::Object(out)
}

#[tokio::test]
async fn asterisk_down_is_503_naming_the_link_and_back_with_new_ids() {
    let mut e = E2e::start(LiveActions::All, false).await;
    // Live objects before the outage: an agent, the static agent of 401, a call segment.
    e.login_400("1002", 1).await;
    let agent = e.agent_id(Q400, "Back Office").await;
    let static_before = e.agent_id(Q401, "Static 1003").await;
    let seg = e.call_from_1001().await;
    let ids_before = config_ids(&e).await;

    let stopped = SystemTime::now();
    e.ast.stop();
    eventually!(10, "503 for call segments", {
        e.get(&cs("callSegments")).await.0 == 503
    });
    let ap = format!("{Q400}/agents/{agent}");
    let reads = [
        cs("callSegments"),
        cs(&format!("callSegments/{seg}")),
        cs("extensions/getByName/1001/callSegments"),
        cs("extensions/getByName/1002/agents"),
        format!("{Q400}/agents"),
        format!("{Q401}/agents"),
        format!("{Q400}/callSegments"),
        ap.clone(),
        format!("{ap}/extension"),
        format!("{ap}/statistics"),
    ];
    let actions: Vec<(String, Option<Value>)> = vec![
        (
            format!("{E1001}/originate"),
            Some(json!({"destination": "1002"})),
        ),
        (format!("{E1001}/dnd"), Some(json!({"enabled": true}))),
        (format!("{E1001}/dnd/enable"), None),
        (format!("{E1001}/dnd/disable"), None),
        (
            format!("{Q400}/login"),
            Some(json!({"extensionNumber": "1001"})),
        ),
        (
            format!("{Q400}/logout"),
            Some(json!({"extensionNumber": "1002"})),
        ),
        (format!("{ap}/logout"), None),
        (format!("{ap}/pause"), Some(json!({"reason": "lunch"}))),
        (format!("{ap}/unpause"), None),
        (format!("{ap}/penalty"), Some(json!({"penalty": 3}))),
        (
            cs(&format!("callSegments/{seg}/transfer")),
            Some(json!({"destination": "8000"})),
        ),
        (
            format!("{ALICE_STATUS}/set"),
            Some(json!({"name": "Out", "type": "away"})),
        ),
    ];
    let mut checked = 0;
    let calls = reads
        .iter()
        .map(|p| (Method::GET, p.clone(), None))
        .chain(actions.into_iter().map(|(p, b)| (Method::POST, p, b)));
    for (m, path, body) in calls {
        let r = e.req(m.clone(), &path, body.as_ref()).await;
        assert_eq!(r.status, 503, "{m} {path}: {}", r.body);
        let msg = r.body["message"].as_str().unwrap_or_default();
        assert_eq!(r.body["status"], 503, "{m} {path}");
        assert!(
            msg.contains("connection to Asterisk (AMI) is down since"),
            "{m} {path}: {msg}"
        );
        // Since when: an RFC 3339 time, not before the stop (to the second).
        let since = msg
            .split("down since ")
            .nth(1)
            .and_then(|s| s.split(": ").next())
            .unwrap_or_default();
        let t = humantime::parse_rfc3339(since)
            .unwrap_or_else(|err| panic!("{m} {path}: since {since:?}: {err}"));
        let slack = std::time::Duration::from_secs(1);
        assert!(t + slack >= stopped, "{since} is the outage, not earlier");
        let retry = r
            .headers
            .get("retry-after")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        assert!(
            retry.parse::<u32>().is_ok_and(|s| s > 0),
            "{m} {path}: Retry-After {retry:?}"
        );
        checked += 1;
    }
    eprintln!("{checked} requests answered 503 while Asterisk was down");
    // Configuration-derived resources keep answering, with their ids.
    assert_eq!(config_ids(&e).await, ids_before);
    for path in [
        cs("extensions/getByName/1001"),
        cs("queues/getByName/400"),
        cs("users/getByName/alice"),
        cs("users/getByName/alice/extensions"),
        ALICE_STATUS.to_string(),
        cs("conferences/getByName/8000"),
    ] {
        let r = e.get(&path).await;
        assert_eq!(r.0, 200, "{path} while down: {}", r.1);
    }

    // Back on the same port: the backend reconnects (with its backoff), takes a new
    // snapshot, and the Live API answers again.
    e.ast.start_again();
    e.wait_up().await;
    let mut ast = Ast::open(&e.ast).await;
    assert!(ast.members("400").await.is_empty(), "a fresh Asterisk");
    let static_after = e.agent_id(Q401, "Static 1003").await;
    assert_ne!(static_before, static_after, "the agent has a new id");
    expect(e.get(&ap).await, 404, "");
    expect(e.get(&cs(&format!("callSegments/{seg}"))).await, 404, "");
    // Actions work again, and their objects get new ids.
    expect(
        e.post(&format!("{Q400}/login"), json!({"extensionNumber": "1002"}))
            .await,
        204,
        "",
    );
    assert!(ast.member("400", "Local/1002@from-queue/n").await.is_some());
    eventually!(5, "the agent again", e.agents(Q400).await == 1);
    assert_ne!(e.agent_id(Q400, "Back Office").await, agent);
    e.originate(E1001, "9999").await;
    let mut seg2: String;
    eventually!(10, "a new segment", {
        let s = e.ok(&cs("extensions/getByName/1001/callSegments")).await;
        seg2 = s[0]["id"].as_str().unwrap_or_default().to_string();
        !seg2.is_empty()
    });
    assert_ne!(seg2, seg, "a call segment has a new id");
    assert_eq!(
        config_ids(&e).await,
        ids_before,
        "extensions, queues, users and rooms keep theirs"
    );
}
