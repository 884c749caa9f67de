//! The Asterisk backend of the Live API against a real Asterisk 22 (one private instance per
//! test, tests/support/asterisk.rs): its facts follow real calls, queue members, DND,
//! conferences and presence; every action's effect is checked through Asterisk itself (an
//! independent AMI probe: QueueStatus, DBGet, Getvar DEVICE_STATE, ConfbridgeList,
//! PresenceStateList, CoreShowChannels); a restart gives new ids; a wrong password is one
//! clear reason, retried with backoff. A FAKE AMI server (named FAKE) produces the faults a
//! real Asterisk cannot: a half-written event line, a server that stops answering mid-list,
//! an over-long line.

mod support;

use isymphony_sync::live::action::{Action, ActionError};
use isymphony_sync::live::ami::{ActionBuilder, AmiSettings, Message};
use isymphony_sync::live::asterisk::{self, Handle};
use isymphony_sync::live::facts::{Facts, Link};
use isymphony_sync::live::value::{AmiValue, Grammar};
use isymphony_sync::secret::Secret;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::asterisk::{Asterisk, Probe};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn v(field: &str, s: &str, g: Grammar) -> AmiValue {
    AmiValue::parse(field, s, g).expect("a valid test value")
}

/// Wait until `cond` holds on the backend's facts; returns how long it took.
async fn wait_for(
    h: &Handle,
    what: &str,
    limit: Duration,
    cond: impl Fn(&Facts) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut rx = h.shared().subscribe();
    loop {
        if h.shared().read(&cond) {
            return start.elapsed();
        }
        let left = limit.checked_sub(start.elapsed()).unwrap_or_default();
        if left.is_zero() {
            let facts = h.shared().read(|f| {
                format!(
                    "{:?} channels={} members={:?}",
                    f.link,
                    f.channels.len(),
                    f.members.keys().collect::<Vec<_>>()
                )
            });
            panic!("timed out after {limit:?} waiting for {what}; facts: {facts}");
        }
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

async fn up(a: &Asterisk) -> (Handle, Duration) {
    let h = asterisk::start(a.settings());
    let t = wait_for(&h, "the link to come up", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    (h, t)
}

fn originate(from: &str, to: &str) -> Action {
    Action::Originate {
        channel: v("peer", &format!("Local/{from}@sim-phone"), Grammar::Device),
        context: v("context", "from-internal", Grammar::Context),
        exten: v("destination", to, Grammar::Exten),
        caller_name: v("name", "Front Desk", Grammar::Text),
        caller_number: v("number", from, Grammar::Exten),
        timeout_ms: 15_000,
        auto_answer: false,
    }
}

fn device_channels<'a>(
    f: &'a Facts,
    device: &str,
) -> Vec<&'a isymphony_sync::live::facts::Channel> {
    f.channels
        .values()
        .filter(|c| c.device() == device)
        .collect()
}

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
    let add = Action::QueueAdd {
        queue: q.clone(),
        interface: iface.clone(),
        state_interface: v("s", "hint:1002@ext-local", Grammar::Device),
        member_name: v("n", "Bob Builder", Grammar::Text),
        penalty: 1,
        paused: false,
    };
    h.execute(add.clone()).await.expect("login");
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
    })
    .await
    .expect("logout");
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
    h.execute(Action::Dnd {
        extension: ext.clone(),
        enabled: true,
    })
    .await
    .expect("DND on");
    let got = probe
        .ask(
            ActionBuilder::new("DBGet")
                .constant("Family", "DND")
                .constant("Key", "1001"),
        )
        .await;
    assert_eq!(got.events.first().map(|m| m.str("Val")), Some("YES"));
    assert_eq!(device_state(&mut probe, "Custom:DND1001").await, "BUSY");
    assert_eq!(device_state(&mut probe, "Custom:DEVDND1001").await, "BUSY");
    assert_eq!(device_state(&mut probe, "Custom:DEVDND91001").await, "BUSY");
    wait_for(&h, "DND in the facts", Duration::from_secs(5), |f| {
        f.dnd.contains("1001")
    })
    .await;
    h.execute(Action::Dnd {
        extension: ext,
        enabled: false,
    })
    .await
    .expect("DND off");
    let got = probe
        .ask(
            ActionBuilder::new("DBGet")
                .constant("Family", "DND")
                .constant("Key", "1001"),
        )
        .await;
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

#[tokio::test]
async fn an_asterisk_restart_reconnects_with_new_ids() {
    let mut ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let key = ("401".to_string(), "Local/1003@from-queue/n".to_string());
    let before = h
        .shared()
        .read(|f| f.members.get(&key).map(|m| m.id))
        .expect("the static member of 401");
    let since_before = match h.shared().read(|f| f.link.clone()) {
        Link::Up { since, .. } => since,
        l => panic!("{l:?}"),
    };
    let mut rx = h.shared().subscribe();
    let saw_down = tokio::spawn({
        let shared = h.shared().clone();
        async move {
            loop {
                if !shared.read(|f| f.link.is_up()) {
                    return shared.read(|f| (f.channels.len(), f.members.len()));
                }
                if rx.changed().await.is_err() {
                    return (usize::MAX, usize::MAX);
                }
            }
        }
    });
    ast.restart();
    let (chans, members) = tokio::time::timeout(Duration::from_secs(10), saw_down)
        .await
        .expect("went down")
        .expect("task");
    assert_eq!((chans, members), (0, 0), "nothing stale while down");
    let t = wait_for(
        &h,
        "reconnected",
        Duration::from_secs(20),
        |f| matches!(&f.link, Link::Up { since, .. } if *since > since_before),
    )
    .await;
    eprintln!("reconnected {t:?} after the restart");
    let after = h
        .shared()
        .read(|f| f.members.get(&key).map(|m| m.id))
        .expect("re-listed");
    assert_ne!(before, after, "an agent gets a new id after the reconnect");
    h.execute(originate("1001", "1002"))
        .await
        .expect("actions work again");
    wait_for(
        &h,
        "a call after the restart",
        Duration::from_secs(10),
        |f| !f.channels.is_empty(),
    )
    .await;
    h.shutdown().await;
}

/// Log lines of this test's thread (the current-thread runtime runs the backend there too).
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_wrong_password_is_one_clear_reason_retried_with_backoff() {
    let logs = Captured::default();
    let sink = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(sub);
    let ast = Asterisk::start();
    let h = asterisk::start(ast.settings_with("wrong-password-xyz"));
    let reason = wait_for(
        &h,
        "a login refusal",
        Duration::from_secs(10),
        |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("refused")),
    )
    .await;
    let _ = reason;
    let text = h.shared().read(|f| match &f.link {
        Link::Down { reason, .. } => reason.clone(),
        l => panic!("{l:?}"),
    });
    assert!(
        text.contains("Authentication failed") && text.contains("ami_password"),
        "{text}"
    );
    assert!(!text.contains("wrong-password-xyz"));
    let e = h.execute(originate("1001", "1002")).await;
    assert!(
        matches!(&e, Err(ActionError::Unavailable { reason, .. }) if reason.contains("refused")),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let attempts = ast.full_log().matches("failed to authenticate").count();
    eprintln!("login attempts in ~5 s: {attempts}");
    assert!(
        (1..=8).contains(&attempts),
        "backoff, not a crash loop: {attempts} attempts"
    );
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// FAKE AMI server: only for faults a real Asterisk cannot produce.

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// After the snapshot: an event split over two writes, then a half-written line and close.
    HalfLine,
    /// CoreShowChannels: `EventList: start`, one item, then silence.
    StopsMidList,
    /// After the snapshot: one line of 20 KB.
    LongLine,
    /// After the snapshot: 64 MB without a line end.
    Flood,
    /// No `FullyBooted` at login; it comes after the snapshot (Asterisk still booting).
    LateBoot,
}

struct Fake {
    port: u16,
    connections: Arc<AtomicUsize>,
    flooded: Arc<AtomicU64>,
}

/// FAKE: start a fake AMI that misbehaves with `fault`.
async fn fake_ami(fault: Fault) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind FAKE");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let flooded = Arc::new(AtomicU64::new(0));
    let (c, fl) = (connections.clone(), flooded.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(fake_session(s, fault, fl.clone()));
        }
    });
    Fake {
        port,
        connections,
        flooded,
    }
}

fn fake_settings(port: u16) -> AmiSettings {
    AmiSettings {
        host: "127.0.0.1".into(),
        port,
        username: "fake".into(),
        password: Secret::new("fake"),
    }
}

async fn fake_session(s: TcpStream, fault: Fault, flooded: Arc<AtomicU64>) {
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    if w.write_all(b"Asterisk Call Manager/11.0.0\r\n")
        .await
        .is_err()
    {
        return;
    }
    let (mut action, mut id, mut answered) = (String::new(), String::new(), 0);
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((k, val)) = line.split_once(": ") {
            match k {
                "Action" => action = val.to_string(),
                "ActionID" => id = val.to_string(),
                _ => {}
            }
            continue;
        }
        // Blank line: the action is complete.
        if action == "CoreShowChannels" && fault == Fault::LateBoot {
            flooded.fetch_add(1, Ordering::SeqCst); // here: counts the listings
        }
        let reply = match action.as_str() {
            "Login" if fault != Fault::LateBoot => format!(
                "Response: Success\r\nActionID: {id}\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n"
            ),
            "Login" | "Ping" | "Logoff" => format!("Response: Success\r\nActionID: {id}\r\n\r\n"),
            "CoreSettings" => format!("Response: Success\r\nActionID: {id}\r\nAsteriskVersion: FAKE\r\n\r\n"),
            "CoreShowChannels" if fault == Fault::StopsMidList => format!(
                "Response: Success\r\nActionID: {id}\r\nEventList: start\r\n\r\nEvent: CoreShowChannel\r\nActionID: {id}\r\nChannel: Local/1-1;1\r\nUniqueid: 1.1\r\n\r\n"
            ),
            _ => format!("Response: Success\r\nActionID: {id}\r\nEventList: start\r\n\r\nEvent: {action}Complete\r\nActionID: {id}\r\nEventList: Complete\r\n\r\n"),
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if action != "Login" && action != "Ping" {
            answered += 1;
        }
        if answered == 6 {
            if fault == Fault::LateBoot {
                misbehave(&mut w, fault, &flooded).await;
                continue;
            }
            if fault == Fault::Flood && flooded.load(Ordering::SeqCst) > 0 {
                return; // only the first connection floods: its figure is the one measured
            }
            // The snapshot (six list actions) is answered: now the fault.
            misbehave(&mut w, fault, &flooded).await;
            if fault != Fault::StopsMidList {
                return;
            }
        }
    }
}

async fn misbehave(w: &mut tokio::net::tcp::OwnedWriteHalf, fault: Fault, flooded: &AtomicU64) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    match fault {
        Fault::HalfLine => {
            let _ = w
                .write_all(b"Event: Newchannel\r\nChannel: Local/7@x-1;1\r\nUnique")
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = w.write_all(b"id: 7.7\r\nLinkedid: 7.7\r\n\r\n").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = w.write_all(b"Event: Hangup\r\nUniqu").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Fault::LongLine => {
            let mut l = b"Event: Newchannel\r\nChannel: ".to_vec();
            l.extend(std::iter::repeat(b'x').take(20 * 1024));
            l.extend_from_slice(b"\r\n\r\n");
            let _ = w.write_all(&l).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Fault::Flood => {
            let chunk = vec![b'y'; 64 * 1024];
            let _ = w.write_all(b"Event: Newchannel\r\nChannel: ").await;
            for _ in 0..1024 {
                match tokio::time::timeout(Duration::from_secs(2), w.write_all(&chunk)).await {
                    Ok(Ok(())) => flooded.fetch_add(chunk.len() as u64, Ordering::SeqCst),
                    _ => break,
                };
            }
        }
        Fault::LateBoot => {
            let _ = w
                .write_all(b"Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n")
                .await;
        }
        Fault::StopsMidList => {}
    }
}

fn down_reason(h: &Handle) -> Option<String> {
    h.shared().read(|f| match &f.link {
        Link::Down { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn fake_half_written_event_lines() {
    let fake = fake_ami(Fault::HalfLine).await;
    let h = asterisk::start(fake_settings(fake.port));
    wait_for(&h, "FAKE link up", Duration::from_secs(5), |f| {
        f.link.is_up()
    })
    .await;
    // An event split mid-line across two writes is read whole.
    wait_for(&h, "channel 7.7", Duration::from_secs(5), |f| {
        f.channels.contains_key("7.7")
    })
    .await;
    // A half-written line followed by a close: the link is down, nothing stale is kept, and
    // the half event was never applied (7.7 is not "hung up" by it; it is gone with the link).
    wait_for(&h, "FAKE link down", Duration::from_secs(5), |f| {
        !f.link.is_up()
    })
    .await;
    assert!(h.shared().read(|f| f.channels.is_empty()));
    let reason = down_reason(&h).unwrap_or_default();
    assert!(reason.contains("closed"), "{reason}");
    wait_for(&h, "reconnected to FAKE", Duration::from_secs(5), |_| {
        fake.connections.load(Ordering::SeqCst) >= 2
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn fake_server_that_stops_answering_mid_list() {
    let fake = fake_ami(Fault::StopsMidList).await;
    let h = asterisk::start(fake_settings(fake.port));
    let t = wait_for(&h, "a timeout reason", Duration::from_secs(15), |f| {
        matches!(&f.link, Link::Down { reason, .. } if reason.contains("did not answer CoreShowChannels"))
    })
    .await;
    eprintln!("mid-list silence detected after {t:?}");
    assert!(
        h.shared().read(|f| f.channels.is_empty()),
        "a partial list is never shown"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn fake_over_long_line_closes_with_a_clear_error() {
    let fake = fake_ami(Fault::LongLine).await;
    let h = asterisk::start(fake_settings(fake.port));
    wait_for(&h, "the long-line reason", Duration::from_secs(5), |f| {
        matches!(&f.link, Link::Down { reason, .. } if reason.contains("longer than 16384 bytes"))
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn fake_flood_without_line_end_is_bounded() {
    let fake = fake_ami(Fault::Flood).await;
    let h = asterisk::start(fake_settings(fake.port));
    wait_for(
        &h,
        "the flood refused",
        Duration::from_secs(10),
        |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("longer than")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sent = fake.flooded.load(Ordering::SeqCst);
    eprintln!(
        "FAKE could write {} KB before the backend closed",
        sent / 1024
    );
    assert!(
        sent < 16 * 1024 * 1024,
        "the reader stopped reading early: {sent} bytes accepted of 64 MB"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn check_config_ami_line_names_missing_write_classes() {
    use isymphony_sync::live::asterisk::check::check;
    let ast = Asterisk::start();
    let ok = check(&ast.settings()).await.expect("the full user passes");
    assert!(
        ok.contains("Asterisk 22.") && ok.contains("every action"),
        "{ok}"
    );
    let mut limited = ast.settings();
    limited.username = format!("{}-limited", support::asterisk::USER);
    let e = check(&limited)
        .await
        .expect_err("the limited user lacks classes");
    for needle in [
        "DBPut (DND on) needs write class 'system'",
        "'originate'",
        "QueueAdd (queue login) needs write class 'agent'",
        "Redirect (call-segment transfer) needs write class 'call'",
    ] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
    assert!(!e.contains("CoreShowChannels"), "reporting is granted: {e}");
    let wrong = check(&ast.settings_with("nope"))
        .await
        .expect_err("wrong password");
    assert!(
        wrong.contains("refused") && !wrong.contains("nope"),
        "{wrong}"
    );
}

#[tokio::test]
async fn metrics_and_status_show_the_ami_connection() {
    let ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let agent = isymphony_sync::agent::status::AgentState::new();
    assert!(
        !agent.metrics().contains("ami_connected"),
        "not exported without the backend"
    );
    agent.attach_ami(h.shared().clone());
    h.execute(originate("1001", "1002"))
        .await
        .expect("originate");
    wait_for(&h, "a bridged call", Duration::from_secs(10), |f| {
        f.channels.values().filter(|c| c.bridge.is_some()).count() >= 2
    })
    .await;
    let m = agent.metrics();
    assert!(m.contains("isymphony_sync_ami_connected 1"), "{m}");
    assert!(m.contains("isymphony_sync_live_calls 1"), "{m}");
    let events = m
        .lines()
        .find(|l| l.starts_with("isymphony_sync_ami_events_total "))
        .expect("events counter");
    assert!(
        events
            .split(' ')
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            > 0,
        "{events}"
    );
    let st = agent.status();
    let ami = st.ami.as_ref().expect("status has ami");
    assert!(ami.connected_since.is_some() && ami.calls_now == 1);
    let json = serde_json::to_value(&st).expect("status JSON");
    assert!(json["ami"]["connected_since"].is_string(), "{json}");
    ast.stop();
    wait_for(&h, "down", Duration::from_secs(10), |f| !f.link.is_up()).await;
    let m = agent.metrics();
    assert!(
        m.contains("isymphony_sync_ami_connected 0") && m.contains("isymphony_sync_live_calls 0"),
        "{m}"
    );
    let st = agent.status();
    assert!(st.ami.as_ref().is_some_and(|a| a.down_reason.is_some()));
    h.shutdown().await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Figures for docs/README-live.md: the snapshot at connect with 40 calls up (80 Local
/// channels), and change-to-visible latency (a device-state change sent by an independent
/// AMI client → the backend's facts), 300 samples.
#[tokio::test]
async fn measured_snapshot_and_change_to_visible_latency() {
    let ast = Asterisk::start();
    let mut probe = Probe::open(&ast).await;
    for i in 0..40 {
        let a = ActionBuilder::new("Originate")
            .constant("Channel", "Local/s@answer-wait")
            .constant("Context", "from-internal")
            .constant("Exten", "9999")
            .constant("Priority", "1")
            .constant("Async", "true");
        assert_eq!(
            probe.ask(a).await.response.response(),
            Some("Success"),
            "call {i}"
        );
    }
    for _ in 0..100 {
        let r = probe.ask(ActionBuilder::new("CoreShowChannels")).await;
        if r.events.len() >= 80 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut snaps = Vec::new();
    for _ in 0..5 {
        let (h, t) = up(&ast).await;
        assert!(h.shared().read(|f| f.channels.len()) >= 80);
        snaps.push(t);
        h.shutdown().await;
    }
    snaps.sort();
    eprintln!(
        "FIGURE snapshot at connect (login + lists, 80 channels): p50 {:?}, max {:?}",
        percentile(&snaps, 0.5),
        snaps[snaps.len() - 1]
    );
    let (h, _) = up(&ast).await;
    let mut lat = Vec::new();
    for i in 0..300u32 {
        let ext = format!("{}", 5000 + i);
        let var = format!("DEVICE_STATE(Custom:DND{ext})");
        let a = ActionBuilder::new("Setvar")
            .value("Variable", &v("v", &var, Grammar::Channel))
            .constant("Value", "BUSY");
        let t = Instant::now();
        probe.ask(a).await;
        wait_for(&h, "the DND lamp", Duration::from_secs(5), |f| {
            f.dnd.contains(&ext)
        })
        .await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    eprintln!(
        "FIGURE change-to-visible (Setvar sent → facts): p50 {p50:?}, p99 {p99:?}, max {:?}",
        lat[lat.len() - 1]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    h.shutdown().await;
}

/// The AMI connection cut while Asterisk keeps running (a TCP proxy between them): while down,
/// no stale state and actions answer Unavailable naming the loss; after the reconnect the same
/// Asterisk channels and members are re-listed with NEW live ids.
#[tokio::test]
async fn a_cut_connection_relists_the_same_calls_with_new_ids() {
    use support::agent::{Mode, Proxy};
    let ast = Asterisk::start();
    let proxy = Proxy::start(([127, 0, 0, 1], ast.port).into()).await;
    let mut s = ast.settings();
    s.port = proxy.addr.port();
    let h = asterisk::start(s);
    wait_for(&h, "up through the proxy", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    h.execute(originate("1001", "1002"))
        .await
        .expect("originate");
    wait_for(&h, "a bridged call", Duration::from_secs(10), |f| {
        f.channels.values().filter(|c| c.bridge.is_some()).count() >= 2
    })
    .await;
    let snapshot_ids = |h: &Handle| {
        h.shared().read(|f| {
            let mut v: Vec<(String, uuid::Uuid)> =
                f.channels.iter().map(|(k, c)| (k.clone(), c.id)).collect();
            v.sort();
            v
        })
    };
    let before = snapshot_ids(&h);
    let static_key = ("401".to_string(), "Local/1003@from-queue/n".to_string());
    let member_before = h.shared().read(|f| f.members[&static_key].id);
    proxy.set(Mode::Down);
    wait_for(&h, "down", Duration::from_secs(5), |f| !f.link.is_up()).await;
    assert!(
        h.shared()
            .read(|f| f.channels.is_empty() && f.members.is_empty()),
        "nothing stale while down"
    );
    match h.execute(originate("1001", "1003")).await {
        Err(ActionError::Unavailable { reason, .. }) => assert!(!reason.is_empty(), "a reason"),
        other => panic!("while down: {other:?}"),
    }
    proxy.set(Mode::Up);
    wait_for(&h, "up again", Duration::from_secs(15), |f| f.link.is_up()).await;
    let after = snapshot_ids(&h);
    let keys = |v: &[(String, uuid::Uuid)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(
        keys(&before),
        keys(&after),
        "the same Asterisk channels, re-listed"
    );
    for ((_, a), (_, b)) in before.iter().zip(&after) {
        assert_ne!(a, b, "a re-listed segment gets a new id");
    }
    assert_ne!(
        member_before,
        h.shared().read(|f| f.members[&static_key].id)
    );
    assert!(
        h.shared()
            .read(|f| f.channels.values().filter(|c| c.bridge.is_some()).count() >= 2),
        "bridges re-listed"
    );
    h.shutdown().await;
}

/// The AMI login read from FreePBX's `freepbx_settings` (MariaDB), `[live]` overriding a key;
/// and with no FreePBX database, `[live] ami_*` alone.
#[tokio::test]
async fn the_login_comes_from_freepbx_settings_or_live_overrides() {
    use isymphony_sync::config::{Config, LiveBackend};
    let ast = Asterisk::start();
    let db = support::TestDb::new("ami").await;
    db.exec("CREATE TABLE freepbx_settings (keyword VARCHAR(50) PRIMARY KEY, value VARCHAR(255))")
        .await;
    db.exec(&format!(
        "INSERT INTO freepbx_settings VALUES ('AMPMGRUSER','{}'),('AMPMGRPASS','{}'),('ASTMANAGERHOST','127.0.0.1'),('ASTMANAGERPORT','{}')",
        support::asterisk::USER, support::asterisk::SECRET, ast.port
    ))
    .await;
    let mut cfg = Config::default();
    cfg.freepbx.database_url = Some(Secret::new(db.url()));
    cfg.live.backend = LiveBackend::Asterisk;
    let s = asterisk::settings_from(&cfg)
        .await
        .expect("read from FreePBX");
    assert_eq!(
        (s.username.as_str(), s.port),
        (support::asterisk::USER, ast.port)
    );
    assert!(
        !format!("{s:?}").contains(support::asterisk::SECRET),
        "Debug hides the password"
    );
    let h = asterisk::start_from_config(&cfg);
    wait_for(
        &h,
        "up from FreePBX's login",
        Duration::from_secs(10),
        |f| f.link.is_up(),
    )
    .await;
    h.shutdown().await;
    // An override wins: a wrong [live] ami_password is refused.
    cfg.live.ami_password = Some(Secret::new("override-wrong"));
    cfg.live.ami_username = Some(support::asterisk::USER.into());
    let h = asterisk::start_from_config(&cfg);
    wait_for(
        &h,
        "refused",
        Duration::from_secs(10),
        |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("refused")),
    )
    .await;
    h.shutdown().await;
    // No FreePBX database at all (--serve-only): [live] ami_* alone.
    let mut cfg = Config::default();
    cfg.freepbx.database_url = None;
    cfg.freepbx.config_file = "/nonexistent/freepbx.conf".into();
    cfg.freepbx.amportal_conf = "/nonexistent/amportal.conf".into();
    cfg.live.ami_username = Some(support::asterisk::USER.into());
    cfg.live.ami_password = Some(Secret::new(support::asterisk::SECRET));
    cfg.live.ami_port = Some(ast.port);
    let h = asterisk::start_from_config(&cfg);
    wait_for(&h, "up from [live] alone", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    h.shutdown().await;
    // Neither: Down with a reason naming the settings to set, no panic.
    cfg.live.ami_password = None;
    let h = asterisk::start_from_config(&cfg);
    wait_for(&h, "a settings reason", Duration::from_secs(10), |f| matches!(&f.link, Link::Down { reason, .. } if reason.contains("ami_username/ami_password"))).await;
    h.shutdown().await;
}

#[tokio::test]
async fn fake_asterisk_still_booting_is_listed_again_after_fully_booted() {
    let fake = fake_ami(Fault::LateBoot).await;
    let h = asterisk::start(fake_settings(fake.port));
    let t = wait_for(&h, "up without FullyBooted", Duration::from_secs(10), |f| {
        f.link.is_up()
    })
    .await;
    assert!(
        t >= Duration::from_millis(2900),
        "waited for FullyBooted first: {t:?}"
    );
    let start = Instant::now();
    while fake.flooded.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.flooded.load(Ordering::SeqCst),
        2,
        "listed again after the late FullyBooted"
    );
    assert!(h.shared().read(|f| f.link.is_up()));
    assert_eq!(
        fake.connections.load(Ordering::SeqCst),
        1,
        "without reconnecting"
    );
    h.shutdown().await;
}

/// Change-to-visible latency while Asterisk emits a storm of channel events (short calls
/// originated back to back by another AMI client), and that the latency does not grow.
#[tokio::test]
async fn measured_latency_under_an_event_storm() {
    let ast = Asterisk::start();
    let (h, _) = up(&ast).await;
    let mut storm = Probe::open(&ast).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let storm_task = tokio::spawn(async move {
        let mut calls = 0u32;
        while !stop2.load(Ordering::SeqCst) {
            let a = ActionBuilder::new("Originate")
                .constant("Channel", "Local/s@answer-wait")
                .constant("Application", "Hangup")
                .constant("Async", "true");
            storm.ask(a).await;
            calls += 1;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        calls
    });
    let mut probe = Probe::open(&ast).await;
    let events_before = h.stats().events_total;
    let t0 = Instant::now();
    let mut first = Vec::new();
    let mut last = Vec::new();
    for i in 0..400u32 {
        let ext = format!("{}", 6000 + i);
        let var = format!("DEVICE_STATE(Custom:DND{ext})");
        let a = ActionBuilder::new("Setvar")
            .value("Variable", &v("v", &var, Grammar::Channel))
            .constant("Value", "BUSY");
        let t = Instant::now();
        probe.ask(a).await;
        wait_for(&h, "the DND lamp", Duration::from_secs(5), |f| {
            f.dnd.contains(&ext)
        })
        .await;
        if i < 200 {
            first.push(t.elapsed())
        } else {
            last.push(t.elapsed())
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let calls = storm_task.await.expect("storm");
    let rate = (h.stats().events_total - events_before) as f64 / secs;
    first.sort();
    last.sort();
    eprintln!(
        "FIGURE under a storm of {rate:.0} events/s ({calls} calls in {secs:.1} s): first half p50 {:?} p99 {:?}; second half p50 {:?} p99 {:?}",
        percentile(&first, 0.5), percentile(&first, 0.99), percentile(&last, 0.5), percentile(&last, 0.99)
    );
    assert!(rate > 100.0, "a storm: {rate} events/s");
    assert!(percentile(&last, 0.99) < Duration::from_millis(100));
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
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let written = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let rec = written.clone();
    let upstream = ast.port;
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            return;
        };
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        let mut buf = vec![0u8; 8192];
        loop {
            use tokio::io::AsyncReadExt;
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            rec.lock().expect("lock").extend_from_slice(&buf[..n]);
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut s = ast.settings();
    s.port = port;
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
    let bytes = written.lock().expect("lock").clone();
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
