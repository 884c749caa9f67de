//! The FreePBX half of an explanation: where FreePBX keeps the one object (tables and rows,
//! the voicemail.conf line of its e-mail, the mapping mode), the desired iSymphony object the
//! mapping made of it, and the rules that shaped it or left it out. Pure: it reads only the
//! snapshot a pass reads, the desired state mapped from it, and (for the e-mail's line) the
//! one voicemail.conf file.

use super::{FreepbxSide, ObjectRef};
use crate::config::Config;
use crate::freepbx::mapping::{self, Mode};
use crate::freepbx::snapshot::Snapshot;
use crate::model::{Desired, Kind, PasswordSpec};
use serde_json::{json, Value};
use std::path::Path;

/// The mode's name for people.
fn mode_text(m: Mode) -> &'static str {
    match m {
        Mode::CxTables => "cxpanel tables (cxpanel_users, cxpanel_queues, …)",
        Mode::CxUserman => "cxpanel with User Manager (userman_users and its cxpanel settings)",
        Mode::NoCxpanel => "no cxpanel module: the [sync] default_add_* settings decide",
    }
}

/// A password as an explanation shows it: never the value.
fn masked(p: &PasswordSpec) -> Value {
    json!({"hash": p.hash.as_ref().map(|_| "***"), "dirty": p.dirty})
}

/// The desired object of `obj`, as JSON with passwords masked (None: not desired).
pub(super) fn desired_json(d: &Desired, obj: &ObjectRef) -> Option<Value> {
    let k = obj.key.as_str();
    let v = match obj.kind {
        Kind::Extension => serde_json::to_value(d.extensions.get(k)?),
        Kind::Queue => serde_json::to_value(d.queues.get(k)?),
        Kind::ConferenceRoom => serde_json::to_value(d.conference_rooms.get(k)?),
        Kind::ParkingLot => {
            serde_json::to_value(d.parking_lot.as_ref().filter(|p| p.identifier == k)?)
        }
        Kind::User => {
            let u = d.users.get(k)?;
            let mut v = serde_json::to_value(u).ok()?;
            v["password"] = masked(&u.password);
            Ok(v)
        }
        Kind::Administrator => {
            let a = d.administrators.get(k)?;
            Ok(json!({"user_name": a.user_name, "password": masked(&a.password)}))
        }
        _ => return None,
    };
    v.ok()
}

/// Every key FreePBX or the desired state knows for `kind` (for "did you mean").
pub(super) fn known_keys(snap: &Snapshot, d: &Desired, kind: Kind) -> Vec<String> {
    let mut keys: Vec<String> = match kind {
        Kind::Extension => snap.users.iter().map(|u| u.extension.clone()).collect(),
        Kind::User => d
            .users
            .keys()
            .cloned()
            .chain(snap.userman_users.iter().map(|u| u.username.clone()))
            .chain(snap.users.iter().map(|u| u.extension.clone()))
            .collect(),
        Kind::Queue => snap
            .queues
            .iter()
            .map(|q| q.extension.trim().to_string())
            .collect(),
        Kind::ConferenceRoom => snap
            .conferences
            .iter()
            .map(|c| c.exten.trim().to_string())
            .collect(),
        Kind::ParkingLot => d.parking_lot.iter().map(|p| p.identifier.clone()).collect(),
        Kind::Administrator => d
            .administrators
            .keys()
            .cloned()
            .chain(snap.ampusers.iter().map(|a| a.username.clone()))
            .collect(),
        _ => Vec::new(),
    };
    keys.retain(|k| !k.is_empty());
    keys.sort();
    keys.dedup();
    keys
}

/// The rows FreePBX holds for `obj`, one line each, and the rules that left it out (if any).
pub(super) fn side(snap: &Snapshot, d: &Desired, cfg: &Config, obj: &ObjectRef) -> FreepbxSide {
    let mode = mapping::mode(snap);
    let mut s = FreepbxSide {
        mode: mode_text(mode).to_string(),
        ..FreepbxSide::default()
    };
    let k = obj.key.as_str();
    match obj.kind {
        Kind::Extension => extension_rows(snap, cfg, k, &mut s),
        Kind::User => user_rows(snap, mode, k, &mut s),
        Kind::Queue => queue_rows(snap, mode, cfg, k, &mut s),
        Kind::ConferenceRoom => room_rows(snap, mode, cfg, k, &mut s),
        Kind::ParkingLot => {
            if let Some(p) = &snap.parking_lot {
                s.rows
                    .push(format!("parkplus id {}: parkext {:?}", p.id, p.parkext));
            }
            for r in &snap.legacy_parking {
                s.rows
                    .push(format!("parkinglot {} = {:?}", r.keyword, r.data));
            }
            if snap
                .modules
                .iter()
                .any(|m| m.modulename == "parking" && !m.enabled)
            {
                s.skipped = Some("the parking module is disabled in FreePBX (modules)".into());
            }
        }
        Kind::Administrator => {
            for a in snap.ampusers.iter().filter(|a| a.username == k) {
                s.rows.push(format!(
                    "ampusers {}: sections {:?}",
                    a.username, a.sections
                ));
            }
            for u in snap.userman_users.iter().filter(|u| u.username == k) {
                s.rows
                    .push(format!("userman_users id {}: {}", u.id, u.username));
            }
            if !s.rows.is_empty() && !d.administrators.contains_key(k) {
                s.skipped = Some(
                    "not a FreePBX administrator with access to the cxpanel module (sections \
                     '*' or 'cxpanel', or User Manager pbx_admin)"
                        .into(),
                );
            }
        }
        _ => {}
    }
    s.found = !s.rows.is_empty();
    if let Some(why) = d.frozen.get(&obj.kind) {
        s.rules.push(format!(
            "frozen this pass: {why} (iSymphony's copy is left alone)"
        ));
    }
    if let Some(why) = d.held_deletes.get(&obj.kind) {
        s.rules.push(format!("deletions held: {why}"));
    }
    s
}

fn cx_user<'a>(snap: &'a Snapshot, k: &str) -> Option<&'a crate::freepbx::snapshot::CxUser> {
    snap.cxpanel_users.iter().find(|c| c.user_id == k)
}

fn extension_rows(snap: &Snapshot, cfg: &Config, k: &str, s: &mut FreepbxSide) {
    for u in snap.users.iter().filter(|u| u.extension == k) {
        s.rows.push(format!(
            "users {}: name {:?}, voicemail {:?}",
            u.extension, u.name, u.voicemail
        ));
        s.voicemail = voicemail_line(&cfg.freepbx.voicemail_conf, &u.voicemail, k);
    }
    for dv in snap.devices.iter().filter(|dv| dv.user == k) {
        s.rows.push(format!(
            "devices {}: tech {}, dial {:?}",
            dv.id, dv.tech, dv.dial
        ));
    }
    if let Some(c) = cx_user(snap, k) {
        s.rows.push(format!(
            "cxpanel_users {}: add_extension {}, add_user {}, full {}, parent_user_id {:?}",
            c.user_id, c.add_extension, c.add_user, c.full, c.parent_user_id
        ));
        if !c.add_extension {
            s.skipped =
                Some("excluded by a cxpanel setting: cxpanel_users.add_extension = 0".into());
        }
    }
    if snap.users.iter().any(|u| u.extension == k)
        && !snap.has_table("cxpanel_users")
        && !cfg.sync.default_add_extensions
    {
        s.skipped = Some("no cxpanel module and [sync] default_add_extensions = false".into());
    }
}

fn user_rows(snap: &Snapshot, mode: Mode, k: &str, s: &mut FreepbxSide) {
    if mode == Mode::CxTables {
        if let Some(c) = cx_user(snap, k) {
            s.rows.push(format!(
                "cxpanel_users {}: add_user {}, full {}, password {}",
                c.user_id,
                c.add_user,
                c.full,
                if c.hashed_password.expose().is_empty() {
                    "none"
                } else {
                    "***"
                }
            ));
            if !c.add_user {
                s.skipped =
                    Some("excluded by a cxpanel setting: cxpanel_users.add_user = 0".into());
            }
        }
    }
    for u in snap.userman_users.iter().filter(|u| u.username == k) {
        s.rows.push(format!(
            "userman_users id {}: {}, default_extension {:?}",
            u.id, u.username, u.default_extension
        ));
        for st in snap
            .userman_user_settings
            .iter()
            .filter(|st| st.id == u.id && st.module == "cxpanel")
        {
            s.rows.push(format!(
                "userman_users_settings {} cxpanel.{} = {:?}",
                u.id, st.key, st.val
            ));
        }
    }
    for p in snap.cxpanel_phone_numbers.iter().filter(|p| p.user_id == k) {
        s.rows.push(format!(
            "cxpanel_phone_number {}: {} {}",
            p.user_id, p.kind, p.phone_number
        ));
    }
}

fn queue_rows(snap: &Snapshot, mode: Mode, cfg: &Config, k: &str, s: &mut FreepbxSide) {
    for q in snap.queues.iter().filter(|q| q.extension.trim() == k) {
        s.rows.push(format!(
            "queues_config {}: descr {:?}",
            q.extension, q.descr
        ));
    }
    for c in snap.cxpanel_queues.iter().filter(|c| c.queue_id == k) {
        s.rows.push(format!(
            "cxpanel_queues {}: add_queue {}",
            c.queue_id, c.add_queue
        ));
        if !c.add_queue && mode != Mode::NoCxpanel {
            s.skipped = Some("excluded by a cxpanel setting: cxpanel_queues.add_queue = 0".into());
        }
    }
    for dd in snap
        .queue_details
        .iter()
        .filter(|dd| dd.id == k && dd.keyword.starts_with("event"))
    {
        s.rows.push(format!(
            "queues_details {}: {} = {:?}",
            dd.id, dd.keyword, dd.data
        ));
    }
    if !s.rows.is_empty() && mode == Mode::NoCxpanel && !cfg.sync.default_add_queues {
        s.skipped = Some("no cxpanel module and [sync] default_add_queues = false".into());
    }
}

fn room_rows(snap: &Snapshot, mode: Mode, cfg: &Config, k: &str, s: &mut FreepbxSide) {
    for c in snap.conferences.iter().filter(|c| c.exten.trim() == k) {
        s.rows.push(format!(
            "meetme {}: description {:?}",
            c.exten, c.description
        ));
    }
    for c in snap
        .cxpanel_conference_rooms
        .iter()
        .filter(|c| c.conference_room_id == k)
    {
        s.rows.push(format!(
            "cxpanel_conference_rooms {}: add_conference_room {}",
            c.conference_room_id, c.add_conference_room
        ));
        if !c.add_conference_room && mode != Mode::NoCxpanel {
            s.skipped = Some(
                "excluded by a cxpanel setting: cxpanel_conference_rooms.add_conference_room = 0"
                    .into(),
            );
        }
    }
    if !s.rows.is_empty() && mode == Mode::NoCxpanel && !cfg.sync.default_add_conference_rooms {
        s.skipped =
            Some("no cxpanel module and [sync] default_add_conference_rooms = false".into());
    }
}

/// `FILE:LINE` of mailbox `mailbox` in `[context]` of voicemail.conf (the main file only:
/// a mailbox in an `#include` is named as such). Bounded: the file is read once, as text.
fn voicemail_line(path: &Path, context: &str, mailbox: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let context = match context.trim() {
        "" | "novm" => "default",
        c => c,
    };
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            current = c.trim().to_string();
            continue;
        }
        let Some((left, _)) = t.split_once("=>").or_else(|| t.split_once('=')) else {
            continue;
        };
        if current == context && left.trim() == mailbox {
            return Some(format!("{}:{}", path.display(), n + 1));
        }
    }
    Some(format!(
        "{}: mailbox {mailbox} of [{context}] not in the main file (an #include, or none)",
        path.display()
    ))
}
