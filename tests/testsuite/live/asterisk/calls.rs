//! Calls, queue members, DND, conferences and presence on a real Asterisk: each action's
//! effect checked through Asterisk itself; and the exact bytes Asterisk receives.

use super::*;

#[tokio::test]
async fn facts_follow_a_real_call_and_its_hangup() {
    let ast = Asterisk::start();
    let (h, connect) = up(&ast).await;
    eprintln!("connect + login + snapshot: {connect:?}");
    let t0 = Instant::now();
    h.execute(originate("1001", "1002"))
        .await
        .expect("originate accepted");
    let accepted = t0.elapsed();
    wait_for(&h, "1001 and 1002 bridged", Duration::from_secs(10), |f| {
        let a = device_channels(f, "Local/1001@sim-phone");
        let b = device_channels(f, "Local/1002@sim-phone");
        a.iter()
            .any(|x| x.bridge.is_some() && b.iter().any(|y| y.bridge == x.bridge))
    })
    .await;
    eprintln!("originate accepted (204) after {accepted:?}");
    // The same channels as Asterisk lists them.
    let mut probe = Probe::open(&ast).await;
    let listed = probe.ask(ActionBuilder::new("CoreShowChannels")).await;
    let mut ids: Vec<String> = listed
        .events
        .iter()
        .map(|m| m.str("Uniqueid").to_string())
        .collect();
    ids.sort();
    let mut ours: Vec<String> = h.shared().read(|f| f.channels.keys().cloned().collect());
    ours.sort();
    assert_eq!(ids, ours, "the backend's channels are Asterisk's");
    let caller = h.shared().read(|f| {
        let c = device_channels(f, "Local/1001@sim-phone");
        let c = c
            .iter()
            .find(|c| c.name.ends_with(";1"))
            .expect("the ;1 leg of 1001");
        assert_eq!(c.state, 6, "answered");
        c.name.clone()
    });
    // Hang up through Asterisk: the facts follow (event-to-facts latency measured).
    let t = Instant::now();
    let r = probe
        .ask(ActionBuilder::new("Hangup").value("Channel", &v("c", &caller, Grammar::Channel)))
        .await;
    assert_eq!(r.response.response(), Some("Success"));
    let gone = wait_for(&h, "all channels gone", Duration::from_secs(10), |f| {
        f.channels.is_empty()
    })
    .await;
    eprintln!(
        "Hangup sent to all channels gone from the facts: {gone:?} (elapsed {:?})",
        t.elapsed()
    );
    assert_eq!(h.stats().calls_now, 0);
    assert!(h.stats().events_total > 10);
    h.shutdown().await;
}

async fn queue_member(probe: &mut Probe, queue: &str, interface: &str) -> Option<Message> {
    let r = probe
        .ask(ActionBuilder::new("QueueStatus").value("Queue", &v("q", queue, Grammar::Name)))
        .await;
    r.events
        .into_iter()
        .find(|m| m.event() == Some("QueueMember") && m.str("Location") == interface)
}

#[tokio::test]
async fn queue_login_pause_penalty_logout_as_asterisk_sees_them() {
    let ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let mut probe = Probe::open(&ast).await;
    let (q, iface) = (
        v("queue", "400", Grammar::Name),
        v("i", "Local/1002@from-queue/n", Grammar::Device),
    );
    // FreePBX's user → devices key: the queue-toggle lamps are per device.
    let put = ActionBuilder::new("DBPut")
        .constant("Family", "AMPUSER")
        .constant("Key", "1002/device")
        .constant("Val", "1002&91002");
    assert_eq!(probe.ask(put).await.response.response(), Some("Success"));
    let add = Action::QueueAdd {
        queue: q.clone(),
        interface: iface.clone(),
        state_interface: v("s", "hint:1002@ext-local", Grammar::Device),
        member_name: v("n", "Bob Builder", Grammar::Text),
        penalty: 1,
        paused: false,
        extension: Some(v("e", "1002", Grammar::Exten)),
    };
    h.execute(add.clone()).await.expect("login");
    for dev in ["Custom:QUEUE1002*400", "Custom:QUEUE91002*400"] {
        assert_eq!(device_state(&mut probe, dev).await, "INUSE", "{dev}");
    }
    let m = queue_member(&mut probe, "400", "Local/1002@from-queue/n")
        .await
        .expect("Asterisk has the member");
    assert_eq!(
        (m.str("Membership"), m.str("Name"), m.str("Penalty")),
        ("dynamic", "Bob Builder", "1")
    );
    let key = ("400".to_string(), "Local/1002@from-queue/n".to_string());
    wait_for(&h, "the member in the facts", Duration::from_secs(5), |f| {
        f.members.contains_key(&key)
    })
    .await;
    match h.execute(add).await {
        Err(ActionError::Invalid { field, message }) => {
            assert_eq!(field, "extension");
            assert!(message.contains("already logged in"), "{message}");
        }
        other => panic!("second login: {other:?}"),
    }
    let pause = Action::QueuePause {
        queue: q.clone(),
        interface: iface.clone(),
        paused: true,
        reason: v("r", "lunch", Grammar::Text),
    };
    h.execute(pause).await.expect("pause");
    let m = queue_member(&mut probe, "400", "Local/1002@from-queue/n")
        .await
        .expect("member");
    assert_eq!((m.str("Paused"), m.str("PausedReason")), ("1", "lunch"));
    wait_for(&h, "paused in the facts", Duration::from_secs(5), |f| {
        f.members
            .get(&key)
            .is_some_and(|m| m.paused && m.paused_reason == "lunch")
    })
    .await;
    h.execute(Action::QueuePenalty {
        queue: q.clone(),
        interface: iface.clone(),
        penalty: 3,
    })
    .await
    .expect("penalty");
    let m = queue_member(&mut probe, "400", "Local/1002@from-queue/n")
        .await
        .expect("member");
    assert_eq!(m.str("Penalty"), "3");
    wait_for(&h, "penalty 3 in the facts", Duration::from_secs(5), |f| {
        f.members.get(&key).is_some_and(|m| m.penalty == 3)
    })
    .await;
    h.execute(Action::QueueRemove {
        queue: q.clone(),
        interface: iface.clone(),
        extension: Some(v("e", "1002", Grammar::Exten)),
    })
    .await
    .expect("logout");
    for dev in ["Custom:QUEUE1002*400", "Custom:QUEUE91002*400"] {
        assert_eq!(device_state(&mut probe, dev).await, "NOT_INUSE", "{dev}");
    }
    assert!(queue_member(&mut probe, "400", "Local/1002@from-queue/n")
        .await
        .is_none());
    wait_for(&h, "the member gone", Duration::from_secs(5), |f| {
        !f.members.contains_key(&key)
    })
    .await;
    let again = h
        .execute(Action::QueueRemove {
            queue: q.clone(),
            interface: iface.clone(),
            extension: None,
        })
        .await;
    assert!(
        matches!(&again, Err(ActionError::Invalid { field, .. }) if field == "extension"),
        "{again:?}"
    );
    // The static member of 401 cannot be logged out.
    let stat = Action::QueueRemove {
        queue: v("q", "401", Grammar::Name),
        interface: v("i", "Local/1003@from-queue/n", Grammar::Device),
        extension: None,
    };
    match h.execute(stat).await {
        Err(ActionError::Invalid { field, message }) => assert!(
            field == "extension" && message.contains("static"),
            "{message}"
        ),
        other => panic!("static logout: {other:?}"),
    }
    assert!(queue_member(&mut probe, "401", "Local/1003@from-queue/n")
        .await
        .is_some());
    let unknown = Action::QueueAdd {
        queue: v("q", "499", Grammar::Name),
        interface: iface.clone(),
        state_interface: v("s", "hint:1002@ext-local", Grammar::Device),
        member_name: v("n", "x", Grammar::Text),
        penalty: 0,
        paused: false,
        extension: None,
    };
    assert!(matches!(
        h.execute(unknown).await,
        Err(ActionError::NotFound(_))
    ));
    let nobody = Action::QueuePause {
        queue: q,
        interface: v("i", "Local/1999@from-queue/n", Grammar::Device),
        paused: true,
        reason: v("r", "", Grammar::Text),
    };
    assert!(matches!(
        h.execute(nobody).await,
        Err(ActionError::NotFound(_))
    ));
    h.shutdown().await;
}

async fn device_state(probe: &mut Probe, dev: &str) -> String {
    let var = format!("DEVICE_STATE({dev})");
    let r = probe
        .ask(ActionBuilder::new("Getvar").value("Variable", &v("v", &var, Grammar::Channel)))
        .await;
    r.response.str("Value").to_string()
}

/// Turn DND of extension `ext` (1001) on or off through the link; what Asterisk then answers
/// to `DBGet DND/1001`.
async fn set_dnd(
    h: &Handle,
    probe: &mut Probe,
    ext: &AmiValue,
    enabled: bool,
) -> support::asterisk::Answer {
    let dnd = Action::Dnd {
        extension: ext.clone(),
        enabled,
    };
    let what = if enabled { "DND on" } else { "DND off" };
    h.execute(dnd).await.expect(what);
    let get = ActionBuilder::new("DBGet")
        .constant("Family", "DND")
        .constant("Key", "1001");
    probe.ask(get).await
}

#[tokio::test]
async fn dnd_is_astdb_and_the_freepbx_lamps() {
    let ast = Asterisk::start();
    let mut probe = Probe::open(&ast).await;
    // FreePBX's user → devices key (two devices: the extension's own and a second one).
    let put = ActionBuilder::new("DBPut")
        .constant("Family", "AMPUSER")
        .constant("Key", "1001/device")
        .constant("Val", "1001&91001");
    assert_eq!(probe.ask(put).await.response.response(), Some("Success"));
    let (h, _) = up(&ast).await;
    let ext = v("extension", "1001", Grammar::Exten);
    let got = set_dnd(&h, &mut probe, &ext, true).await;
    assert_eq!(got.events.first().map(|m| m.str("Val")), Some("YES"));
    assert_eq!(device_state(&mut probe, "Custom:DND1001").await, "BUSY");
    assert_eq!(device_state(&mut probe, "Custom:DEVDND1001").await, "BUSY");
    assert_eq!(device_state(&mut probe, "Custom:DEVDND91001").await, "BUSY");
    wait_for(&h, "DND in the facts", Duration::from_secs(5), |f| {
        f.dnd.contains("1001")
    })
    .await;
    let got = set_dnd(&h, &mut probe, &ext, false).await;
    assert_eq!(got.response.response(), Some("Error"), "DND/1001 deleted");
    assert_eq!(
        device_state(&mut probe, "Custom:DND1001").await,
        "UNAVAILABLE"
    );
    assert_eq!(
        device_state(&mut probe, "Custom:DEVDND91001").await,
        "UNAVAILABLE"
    );
    wait_for(&h, "DND off in the facts", Duration::from_secs(5), |f| {
        !f.dnd.contains("1001")
    })
    .await;
    h.shutdown().await;
    // At connect, DND comes from AstDB (DBGetTree), not from a lamp.
    let put = ActionBuilder::new("DBPut")
        .constant("Family", "DND")
        .constant("Key", "1002")
        .constant("Val", "YES");
    probe.ask(put).await;
    let (h, _) = up(&ast).await;
    assert!(
        h.shared().read(|f| f.dnd.contains("1002")),
        "snapshot reads DND/1002"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn redirect_into_the_conference_and_a_gone_channel() {
    let ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    h.execute(originate("1001", "9999"))
        .await
        .expect("originate");
    let chan = wait_for(&h, "the ;1 leg up", Duration::from_secs(10), |f| {
        device_channels(f, "Local/1001@sim-phone")
            .iter()
            .any(|c| c.name.ends_with(";1") && c.state == 6 && c.exten == "9999")
    })
    .await;
    let _ = chan;
    let (name, uid) = h.shared().read(|f| {
        let c = device_channels(f, "Local/1001@sim-phone")
            .into_iter()
            .find(|c| c.name.ends_with(";1"))
            .cloned();
        let c = c.expect("leg");
        (c.name, c.unique_id)
    });
    let redirect = |chan: &str| Action::Redirect {
        channel: v("c", chan, Grammar::Channel),
        context: v("context", "from-internal", Grammar::Context),
        exten: v("destination", "8000", Grammar::Exten),
    };
    h.execute(redirect(&name)).await.expect("redirect");
    let mut probe = Probe::open(&ast).await;
    let mut listed = Vec::new();
    for _ in 0..50 {
        let r = probe
            .ask(ActionBuilder::new("ConfbridgeList").constant("Conference", "8000"))
            .await;
        listed = r
            .events
            .iter()
            .map(|m| m.str("Channel").to_string())
            .collect();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        listed,
        vec![name.clone()],
        "ConfbridgeList 8000 shows the redirected channel"
    );
    wait_for(
        &h,
        "the channel in room 8000",
        Duration::from_secs(5),
        |f| {
            f.conferences
                .get("8000")
                .is_some_and(|c| c.members.contains(&uid))
        },
    )
    .await;
    let gone = h.execute(redirect("Local/1999@sim-phone-0000ffff;1")).await;
    assert!(matches!(gone, Err(ActionError::NotFound(_))), "{gone:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn presence_is_published_as_custom_presence() {
    let ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let note = "Zurück um 13:30 – Mittag";
    h.execute(Action::Presence {
        extensions: vec![
            v("e", "1001", Grammar::Exten),
            v("e", "1002", Grammar::Exten),
        ],
        state: "away",
        note: v("note", note, Grammar::Text),
    })
    .await
    .expect("presence");
    let mut probe = Probe::open(&ast).await;
    let r = probe.ask(ActionBuilder::new("PresenceStateList")).await;
    let p = r
        .events
        .iter()
        .find(|m| m.str("Presentity") == "CustomPresence:1001")
        .expect("listed");
    assert_eq!((p.str("Status"), p.str("Message")), ("away", note));
    wait_for(&h, "presence in the facts", Duration::from_secs(5), |f| {
        f.presence
            .get("1002")
            .is_some_and(|(s, m)| s == "away" && m == note)
    })
    .await;
    h.shutdown().await;
}

/// Every byte the backend writes to AMI, recorded by a proxy in front of the real Asterisk:
/// with Unicode and the longest allowed values in every free-text field, Asterisk receives
/// exactly the intended actions, each a block of `Header: value` lines. (Values with CR, LF,
/// NUL or other control characters cannot even be made: `AmiValue::parse` refuses them, see
/// src/live/value.rs; the Live API answers 422 for them.)
#[tokio::test]
async fn asterisk_receives_exactly_the_intended_actions() {
    let ast = Asterisk::start();
    let recorder = Recorder::start(ast.port).await;
    let mut s = ast.settings();
    s.port = recorder.port;
    let h = asterisk::start(s);
    wait_for(
        &h,
        "up through the recorder",
        Duration::from_secs(10),
        |f| f.link.is_up(),
    )
    .await;
    let long = "ü".repeat(80);
    let text = |t: &str| v("text", t, Grammar::Text);
    let (q, iface) = (
        v("q", "400", Grammar::Name),
        v("i", "Local/1002@from-queue/n", Grammar::Device),
    );
    let actions = vec![
        Action::QueueAdd {
            queue: q.clone(),
            interface: iface.clone(),
            state_interface: v("s", "hint:1002@ext-local", Grammar::Device),
            member_name: text(&long),
            penalty: 0,
            paused: false,
            extension: None,
        },
        Action::QueuePause {
            queue: q,
            interface: iface,
            paused: true,
            reason: text("Mittagspause – zurück um 13:30 ☕"),
        },
        Action::Presence {
            extensions: vec![v("e", "1001", Grammar::Exten)],
            state: "away",
            note: text(&long),
        },
        Action::Originate {
            channel: v("peer", "Local/1001@sim-phone", Grammar::Device),
            context: v("context", "from-internal", Grammar::Context),
            exten: v("destination", "1002", Grammar::Exten),
            caller_name: text("Zoë Ångström 山田"),
            caller_number: v("number", "1001", Grammar::Exten),
            timeout_ms: 15_000,
            auto_answer: true,
        },
        Action::Dnd {
            extension: v("e", "1003", Grammar::Exten),
            enabled: true,
        },
    ];
    for a in actions {
        h.execute(a).await.expect("accepted");
    }
    h.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the recorder forwards the Logoff
    let bytes = recorder.bytes();
    let text = String::from_utf8(bytes).expect("UTF-8 on the wire");
    let blocks: Vec<&str> = text.split("\r\n\r\n").filter(|b| !b.is_empty()).collect();
    let names: Vec<&str> = blocks
        .iter()
        .map(|b| {
            for line in b.split("\r\n") {
                assert!(line.contains(": "), "a header line: {line:?}");
                assert!(
                    !line.contains('\n') && !line.contains('\r'),
                    "no bare CR/LF: {line:?}"
                );
            }
            b.strip_prefix("Action: ")
                .and_then(|r| r.split("\r\n").next())
                .expect("starts with Action")
        })
        .collect();
    let want = [
        "Login",
        "CoreSettings",
        "CoreShowChannels",
        "QueueStatus",
        "ConfbridgeListRooms",
        "DBGetTree",
        "PresenceStateList",
        "QueueAdd",
        "QueuePause",
        "Setvar",
        "Originate",
        "DBPut",
        "Setvar",
        "DBGet",
        "Logoff",
    ];
    let mut got = names.clone();
    // The snapshot's list actions are sent concurrently: compare them as a set.
    got[1..7].sort();
    let mut want_sorted = want.to_vec();
    want_sorted[1..7].sort();
    assert_eq!(got, want_sorted, "exactly the intended actions");
    assert!(text.contains(&format!("MemberName: {long}\r\n")));
}
