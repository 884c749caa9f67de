//! Nothing reaches AMI unvalidated, through HTTP: hostile values in every
//! action field of every action route are answered 422 naming the field (404 for a malformed
//! id in the path), and a recording proxy between the backend and Asterisk shows that not
//! one action was written for them; Asterisk's own view (AstDB, channels, queue members,
//! presence) is unchanged. Unicode is refused where Asterisk wants a dial string and
//! delivered intact (exactly the intended action) where the field is free text.

use super::{cs, Ast, E2e, ALICE_STATUS, E1001, Q400};
use crate::support::server::expect;
use isymphony_sync::config::LiveActions;
use serde_json::{json, Value};

/// Values no AMI field may carry, with a short name for the failure message.
fn hostile() -> Vec<(&'static str, String)> {
    vec![
        (
            "CRLF action",
            "1002\r\nAction: Originate\r\nChannel: Local/1002@sim-phone\r\nExten: 1002\r\n\r\n"
                .into(),
        ),
        (
            "LF action",
            "1002\nAction: DBPut\nFamily: DND\nKey: 1002\nVal: YES\n\n".into(),
        ),
        ("bare CR", "1002\r".into()),
        ("bare LF", "\n".into()),
        ("NUL", "10\u{0}02".into()),
        ("ESC", "a\u{1b}[2Jb".into()),
        ("BEL", "a\u{7}b".into()),
        ("TAB", "a\tb".into()),
        ("DEL", "a\u{7f}b".into()),
        ("C1 NEL", "a\u{85}b".into()),
        ("64 KB digits", "9".repeat(65536)),
        ("64 KB Unicode", "ü".repeat(32768)),
        ("64 KB CRLF", "x\r\n".repeat(21846)),
    ]
}

/// Unicode that is fine text but no dial string.
const UNICODE: [&str; 4] = ["１００２", "1002ü", "☕", "Zoë 山田"];

/// (route, field, body the value is put into, whether the field is free text).
fn fields(agent: &str, seg: &str) -> Vec<(String, &'static str, Value, bool)> {
    let ap = format!("{Q400}/agents/{agent}");
    let set = format!("{ALICE_STATUS}/set");
    vec![
        (
            format!("{E1001}/originate"),
            "destination",
            json!({}),
            false,
        ),
        (
            format!("{E1001}/originate"),
            "autoAnswer",
            json!({"destination": "1002"}),
            false,
        ),
        (
            cs(&format!("callSegments/{seg}/transfer")),
            "destination",
            json!({}),
            false,
        ),
        (format!("{E1001}/dnd"), "enabled", json!({}), false),
        (format!("{Q400}/login"), "extensionNumber", json!({}), false),
        (format!("{Q400}/login"), "extensionId", json!({}), false),
        (
            format!("{Q400}/login"),
            "penalty",
            json!({"extensionNumber": "1002"}),
            false,
        ),
        (
            format!("{Q400}/login"),
            "paused",
            json!({"extensionNumber": "1002"}),
            false,
        ),
        (
            format!("{Q400}/logout"),
            "extensionNumber",
            json!({}),
            false,
        ),
        (format!("{Q400}/logout"), "extensionId", json!({}), false),
        (format!("{ap}/pause"), "reason", json!({}), true),
        (format!("{ap}/pause"), "paused", json!({}), false),
        (format!("{ap}/unpause"), "reason", json!({}), true),
        (format!("{ap}/penalty"), "penalty", json!({}), false),
        (set.clone(), "name", json!({"type": "away"}), true),
        (set.clone(), "type", json!({"name": "x"}), false),
        (
            set.clone(),
            "note",
            json!({"name": "x", "type": "away"}),
            true,
        ),
        (
            set,
            "returnTime",
            json!({"name": "x", "type": "away"}),
            false,
        ),
    ]
}

/// What Asterisk shows that an injected action could change.
async fn asterisk_view(ast: &mut Ast) -> Value {
    let chans: Vec<String> = ast
        .channels()
        .await
        .into_iter()
        .map(|c| c.unique_id)
        .collect();
    let mut members = Vec::new();
    for q in ["400", "401"] {
        for m in ast.members(q).await {
            members.push(format!(
                "{q} {} paused={} reason={} penalty={}",
                m.str("Location"),
                m.str("Paused"),
                m.str("PausedReason"),
                m.str("Penalty")
            ));
        }
    }
    json!({
        "astdb": ast.astdb().await,
        "channels": chans,
        "members": members,
        "presence": format!("{:?}", ast.presence().await),
        "conference": ast.conference("8000").await,
    })
}

#[tokio::test]
async fn hostile_values_in_every_action_field_write_nothing_to_asterisk() {
    let e = E2e::start(LiveActions::All, true).await;
    let rec = e.rec.as_ref().expect("recording");
    let mut ast = Ast::open(&e.ast).await;
    // An agent and a live segment to act on, through valid requests.
    e.login_400("1001", 1).await;
    let agent = e.agent_id(Q400, "Front Desk").await;
    let seg = e.call_from_1001().await;
    // Let the call settle (ringing, answered) so Asterisk's view is stable.
    eventually!(10, "the call answered", {
        ast.channels()
            .await
            .iter()
            .any(|c| c.of("1001") && c.exten == "9999" && c.state == "6")
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let before = rec.actions();
    let view_before = asterisk_view(&mut ast).await;
    eprintln!("actions written by valid requests so far: {before:?}");
    assert!(before.contains(&"QueueAdd".to_string()) && before.contains(&"Originate".into()));

    let mut requests = 0;
    for (path, field, base, text) in fields(&agent, &seg) {
        let mut values = hostile();
        if !text {
            values.extend(UNICODE.iter().map(|u| ("Unicode", u.to_string())));
        }
        for (what, value) in values {
            let mut body = base.clone();
            body[field] = json!(value);
            let got = e.post(&path, body).await;
            requests += 1;
            assert_eq!(got.0, 422, "{path} {field} = {what}: {}", got.1);
            let msg = got.1["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains(&format!("'{field}'")) || msg.contains(field),
                "{path} {field} = {what}: the 422 names the field: {msg}"
            );
        }
        // Wrong types and out-of-range numbers, too.
        for wrong in [
            json!(1e12),
            json!(-2),
            json!([value_of("1002")]),
            json!({"a": 1}),
        ] {
            let mut body = base.clone();
            body[field] = wrong.clone();
            let got = e.post(&path, body).await;
            requests += 1;
            assert_eq!(got.0, 422, "{path} {field} = {wrong}: {}", got.1);
            assert!(got.1["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field));
        }
    }
    // Hostile ids in the path: 404, never an action.
    let ids = [
        "x%0D%0AAction:%20Originate",
        "%00",
        "..%5C..",
        "%0A",
        &"9".repeat(4096),
        "%E2%98%95",
    ];
    for id in ids {
        for (path, body) in [
            (
                cs(&format!("callSegments/{id}/transfer")),
                json!({"destination": "8000"}),
            ),
            (format!("{Q400}/agents/{id}/pause"), json!({"reason": "x"})),
            (format!("{Q400}/agents/{id}/logout"), json!({})),
            (format!("{Q400}/agents/{id}/penalty"), json!({"penalty": 1})),
            (
                cs(&format!("extensions/{id}/originate")),
                json!({"destination": "1002"}),
            ),
            (cs(&format!("extensions/{id}/dnd/enable")), json!({})),
            (
                cs(&format!("queues/{id}/login")),
                json!({"extensionNumber": "1002"}),
            ),
            (
                cs(&format!("users/{id}/status/set")),
                json!({"name": "x", "type": "away"}),
            ),
        ] {
            let got = e.post(&path, body).await;
            requests += 1;
            assert_eq!(got.0, 404, "{path}: {}", got.1);
        }
        // An encoded '/' is refused by the endpoint's gate before any route (400).
        let path = cs(&format!("callSegments/{id}%2F..%2F/transfer"));
        let got = e.post(&path, json!({"destination": "8000"})).await;
        requests += 1;
        assert_eq!(got.0, 400, "{path}: {}", got.1);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = rec.actions();
    eprintln!(
        "{requests} hostile requests; actions before {}, after {}",
        before.len(),
        after.len()
    );
    assert_eq!(
        after, before,
        "not one action written for the hostile requests"
    );
    assert_eq!(
        asterisk_view(&mut ast).await,
        view_before,
        "Asterisk's own view is unchanged"
    );

    // Unicode where the field is free text: delivered, exactly the intended action.
    let reason = "Mittagspause – zurück um 13:30 ☕";
    let ap = format!("{Q400}/agents/{agent}");
    expect(
        e.post(&format!("{ap}/pause"), json!({"reason": reason}))
            .await,
        204,
        "",
    );
    let m = ast
        .member("400", "Local/1001@from-queue/n")
        .await
        .expect("member");
    assert_eq!((m.str("Paused"), m.str("PausedReason")), ("1", reason));
    let note = "Zoë 山田 – im Urlaub\u{2028}bis Montag";
    let set = json!({"name": "Urlaub ✈", "type": "xa", "note": note});
    expect(e.post(&format!("{ALICE_STATUS}/set"), set).await, 204, "");
    let p = ast.presence().await;
    assert!(
        p.iter()
            .any(|(n, s, msg)| n == "CustomPresence:1001" && s == "xa" && msg == note),
        "{p:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let new: Vec<String> = rec.actions()[before.len()..].to_vec();
    // Pause: QueuePause; status of alice (1001 and 1003): one Setvar each.
    assert_eq!(
        new,
        ["QueuePause", "Setvar", "Setvar"],
        "only the intended actions"
    );
    // On the wire: every line a `Header: value` line, UTF-8, no bare CR or LF.
    let bytes = rec.bytes();
    let text = String::from_utf8(bytes).expect("UTF-8 on the wire");
    assert!(text.contains(&format!("Reason: {reason}\r\n")));
    for block in text.split("\r\n\r\n").filter(|b| !b.is_empty()) {
        assert!(block.starts_with("Action: "), "{block:?}");
        for line in block.split("\r\n") {
            assert!(line.contains(": "), "a header line: {line:?}");
            assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
        }
    }
}

fn value_of(s: &str) -> Value {
    Value::String(s.into())
}
