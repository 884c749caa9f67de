//! Events → [`Facts`]: how each AMI event changes what the backend knows. Also the item
//! parsers the snapshot shares (a `CoreShowChannel` is a channel like a `Newchannel`, a
//! `QueueMember` a member like a `QueueMemberAdded`).

use crate::live::ami::Message;
use crate::live::facts::{Channel, Conference, Facts, Member};
use uuid::Uuid;

/// A channel from any event or list item carrying the channel fields; new live ids.
pub fn channel_from(m: &Message) -> Channel {
    Channel {
        id: Uuid::new_v4(),
        caller_id_id: Uuid::new_v4(),
        unique_id: m.str("Uniqueid").to_string(),
        linked_id: m.str("Linkedid").to_string(),
        name: m.str("Channel").to_string(),
        state: m.num("ChannelState").min(u8::MAX as u64) as u8,
        caller_id_name: unknown_empty(m.str("CallerIDName")),
        caller_id_num: unknown_empty(m.str("CallerIDNum")),
        connected_name: unknown_empty(m.str("ConnectedLineName")),
        connected_num: unknown_empty(m.str("ConnectedLineNum")),
        context: m.str("Context").to_string(),
        exten: m.str("Exten").to_string(),
        bridge: m
            .get("BridgeId")
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        dialled_by: None,
        on_hold: false,
        recording: false,
        did: None,
        queue: None,
    }
}

/// Asterisk writes `<unknown>` for an absent caller id.
fn unknown_empty(v: &str) -> String {
    if v == "<unknown>" {
        String::new()
    } else {
        v.to_string()
    }
}

/// Refresh the fields every channel event carries.
fn refresh(ch: &mut Channel, m: &Message) {
    ch.state = m.num("ChannelState").min(u8::MAX as u64) as u8;
    ch.caller_id_name = unknown_empty(m.str("CallerIDName"));
    ch.caller_id_num = unknown_empty(m.str("CallerIDNum"));
    ch.connected_name = unknown_empty(m.str("ConnectedLineName"));
    ch.connected_num = unknown_empty(m.str("ConnectedLineNum"));
    if let Some(c) = m.get("Context") {
        ch.context = c.to_string();
    }
    if let Some(e) = m.get("Exten") {
        ch.exten = e.to_string();
    }
}

/// A queue member from a `QueueMember` list item (`Name`, `Location`) or a `QueueMember*`
/// event (`MemberName`, `Interface`); new live id.
pub fn member_from(m: &Message) -> Member {
    let mut member = Member {
        id: Uuid::new_v4(),
        queue: m.str("Queue").to_string(),
        interface: m
            .get("Interface")
            .or_else(|| m.get("Location"))
            .unwrap_or("")
            .to_string(),
        name: String::new(),
        state_interface: String::new(),
        dynamic: false,
        paused: false,
        paused_reason: String::new(),
        penalty: 0,
        status: 0,
        calls_taken: 0,
        last_call: 0,
        last_pause: 0,
        login_time: 0,
    };
    update_member(&mut member, m);
    member
}

fn update_member(mb: &mut Member, m: &Message) {
    if let Some(n) = m.get("MemberName").or_else(|| m.get("Name")) {
        mb.name = n.to_string();
    }
    if let Some(s) = m.get("StateInterface") {
        mb.state_interface = s.to_string();
    }
    if let Some(v) = m.get("Membership") {
        mb.dynamic = v.eq_ignore_ascii_case("dynamic");
    }
    if m.get("Paused").is_some() {
        mb.paused = m.flag("Paused");
    }
    if let Some(r) = m.get("PausedReason") {
        mb.paused_reason = r.to_string();
    }
    if m.get("Penalty").is_some() {
        mb.penalty = m.num("Penalty").min(u32::MAX as u64) as u32;
    }
    if m.get("Status").is_some() {
        mb.status = m.num("Status").min(u8::MAX as u64) as u8;
    }
    if m.get("CallsTaken").is_some() {
        mb.calls_taken = m.num("CallsTaken");
    }
    for (h, field) in [
        ("LastCall", &mut mb.last_call),
        ("LastPause", &mut mb.last_pause),
        ("LoginTime", &mut mb.login_time),
    ] {
        if m.get(h).is_some() {
            *field = m.num(h);
        }
    }
}

/// Apply one event. Unknown events are ignored.
pub fn apply(f: &mut Facts, m: &Message) {
    let Some(ev) = m.event() else { return };
    f.events += 1;
    match ev {
        "Newchannel" => {
            let uid = m.str("Uniqueid");
            match f.channels.get_mut(uid) {
                Some(ch) => refresh(ch, m),
                None => {
                    f.channels.insert(uid.to_string(), channel_from(m));
                }
            }
        }
        "Newstate" | "NewCallerid" | "NewConnectedLine" | "Newexten" | "NewAccountCode" => {
            if let Some(ch) = f.channels.get_mut(m.str("Uniqueid")) {
                refresh(ch, m);
            }
        }
        "Hangup" => hangup(f, m.str("Uniqueid")),
        _ if ev.starts_with("Queue") => queue_event(f, ev, m),
        _ if ev.starts_with("Confbridge") => conference_event(f, ev, m),
        _ => channel_detail(f, ev, m),
    }
}

fn hangup(f: &mut Facts, uid: &str) {
    f.channels.remove(uid);
    for c in f.conferences.values_mut() {
        c.members.remove(uid);
    }
}

/// Events that change one detail of a channel, DND and presence.
fn channel_detail(f: &mut Facts, ev: &str, m: &Message) {
    if ev == "DeviceStateChange" {
        if let Some(ext) = m.str("Device").strip_prefix("Custom:DND") {
            if m.str("State") == "BUSY" {
                f.dnd.insert(ext.to_string());
            } else {
                f.dnd.remove(ext);
            }
        }
        return;
    }
    if ev == "PresenceStateChange" {
        presence(f, m);
        return;
    }
    if ev == "DialBegin" {
        let caller = m.get("Uniqueid").map(str::to_string);
        if let Some(ch) = f.channels.get_mut(m.str("DestUniqueid")) {
            ch.dialled_by = caller;
        }
        return;
    }
    let Some(ch) = f.channels.get_mut(m.str("Uniqueid")) else {
        return;
    };
    match ev {
        "BridgeEnter" => ch.bridge = Some(m.str("BridgeUniqueid").to_string()),
        "BridgeLeave" => ch.bridge = None,
        "Hold" => ch.on_hold = true,
        "Unhold" => ch.on_hold = false,
        "MixMonitorStart" => ch.recording = true,
        "MixMonitorStop" => ch.recording = false,
        "VarSet" if m.str("Variable").trim_start_matches('_') == "FROM_DID" => {
            ch.did = Some(m.str("Value").to_string()).filter(|v| !v.is_empty());
        }
        _ => {}
    }
}

/// A `PresenceStateChange` (event or `PresenceStateList` item) of `CustomPresence:<ext>`.
pub fn presence(f: &mut Facts, m: &Message) {
    if let Some(ext) = m.str("Presentity").strip_prefix("CustomPresence:") {
        f.presence.insert(
            ext.to_string(),
            (m.str("Status").to_string(), m.str("Message").to_string()),
        );
    }
}

fn queue_event(f: &mut Facts, ev: &str, m: &Message) {
    let queue = m.str("Queue").to_string();
    match ev {
        "QueueMemberRemoved" => {
            f.members.remove(&(queue, m.str("Interface").to_string()));
        }
        "QueueMemberAdded"
        | "QueueMemberStatus"
        | "QueueMemberPause"
        | "QueueMemberPenalty"
        | "QueueMemberRinginuse" => {
            let key = (queue, m.str("Interface").to_string());
            match f.members.get_mut(&key) {
                Some(mb) => update_member(mb, m),
                None => {
                    f.members.insert(key, member_from(m));
                }
            }
        }
        "QueueCallerJoin" => {
            f.queues.insert(queue.clone(), m.num("Count") as u32);
            if let Some(ch) = f.channels.get_mut(m.str("Uniqueid")) {
                ch.queue = Some(queue);
            }
        }
        "QueueCallerLeave" | "QueueCallerAbandon" => {
            if m.get("Count").is_some() {
                f.queues.insert(queue, m.num("Count") as u32);
            }
            if let Some(ch) = f.channels.get_mut(m.str("Uniqueid")) {
                ch.queue = None;
            }
        }
        _ => {}
    }
}

fn conference_event(f: &mut Facts, ev: &str, m: &Message) {
    let name = m.str("Conference").to_string();
    match ev {
        "ConfbridgeStart" => {
            f.conferences.entry(name).or_insert_with(new_conference);
        }
        "ConfbridgeEnd" => {
            f.conferences.remove(&name);
        }
        "ConfbridgeJoin" => {
            let c = f.conferences.entry(name).or_insert_with(new_conference);
            c.members.insert(m.str("Uniqueid").to_string());
        }
        "ConfbridgeLeave" => {
            if let Some(c) = f.conferences.get_mut(&name) {
                c.members.remove(m.str("Uniqueid"));
            }
        }
        "ConfbridgeLock" | "ConfbridgeUnlock" => {
            if let Some(c) = f.conferences.get_mut(&name) {
                c.locked = ev == "ConfbridgeLock";
            }
        }
        _ => {}
    }
}

/// A running conference seen for the first time: a new live id.
pub fn new_conference() -> Conference {
    Conference {
        id: Uuid::new_v4(),
        ..Conference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(h: &[(&str, &str)]) -> Message {
        Message::from_pairs(h)
    }

    #[test]
    fn a_call_comes_and_goes() {
        let mut f = Facts::down("test");
        let new = [
            ("Event", "Newchannel"),
            ("Channel", "Local/1001@sim-phone-00000001;1"),
            ("Uniqueid", "1.1"),
            ("Linkedid", "1.1"),
            ("ChannelState", "0"),
            ("CallerIDNum", "<unknown>"),
            ("Context", "sim-phone"),
            ("Exten", "1001"),
        ];
        apply(&mut f, &msg(&new));
        let id = f.channels["1.1"].id;
        apply(&mut f, &msg(&new));
        assert_eq!(
            f.channels["1.1"].id, id,
            "a repeated Newchannel keeps the id"
        );
        assert_eq!(f.channels["1.1"].caller_id_num, "");
        apply(
            &mut f,
            &msg(&[
                ("Event", "Newstate"),
                ("Uniqueid", "1.1"),
                ("ChannelState", "6"),
            ]),
        );
        apply(
            &mut f,
            &msg(&[
                ("Event", "BridgeEnter"),
                ("Uniqueid", "1.1"),
                ("BridgeUniqueid", "b1"),
            ]),
        );
        apply(
            &mut f,
            &msg(&[
                ("Event", "VarSet"),
                ("Uniqueid", "1.1"),
                ("Variable", "__FROM_DID"),
                ("Value", "5551234"),
            ]),
        );
        let ch = &f.channels["1.1"];
        assert_eq!(
            (ch.state, ch.bridge.as_deref(), ch.did.as_deref()),
            (6, Some("b1"), Some("5551234"))
        );
        apply(&mut f, &msg(&[("Event", "Hangup"), ("Uniqueid", "1.1")]));
        assert!(f.channels.is_empty());
    }

    #[test]
    fn members_dnd_and_rooms() {
        let mut f = Facts::down("test");
        apply(
            &mut f,
            &msg(&[
                ("Event", "QueueMemberAdded"),
                ("Queue", "400"),
                ("Interface", "Local/1002@from-queue/n"),
                ("MemberName", "Bob"),
                ("Membership", "dynamic"),
                ("Paused", "0"),
                ("Penalty", "2"),
            ]),
        );
        apply(
            &mut f,
            &msg(&[
                ("Event", "QueueMemberPause"),
                ("Queue", "400"),
                ("Interface", "Local/1002@from-queue/n"),
                ("Paused", "1"),
                ("PausedReason", "lunch"),
            ]),
        );
        let m = &f.members[&("400".to_string(), "Local/1002@from-queue/n".to_string())];
        assert!(m.dynamic && m.paused && m.penalty == 2 && m.paused_reason == "lunch");
        apply(
            &mut f,
            &msg(&[
                ("Event", "DeviceStateChange"),
                ("Device", "Custom:DND1001"),
                ("State", "BUSY"),
            ]),
        );
        apply(
            &mut f,
            &msg(&[
                ("Event", "DeviceStateChange"),
                ("Device", "Custom:DEVDND1001"),
                ("State", "BUSY"),
            ]),
        );
        assert_eq!(f.dnd.iter().collect::<Vec<_>>(), ["1001"]);
        apply(
            &mut f,
            &msg(&[
                ("Event", "ConfbridgeJoin"),
                ("Conference", "8000"),
                ("Uniqueid", "9.9"),
            ]),
        );
        assert!(f.conferences["8000"].members.contains("9.9"));
        apply(
            &mut f,
            &msg(&[("Event", "ConfbridgeEnd"), ("Conference", "8000")]),
        );
        assert!(f.conferences.is_empty());
    }
}
