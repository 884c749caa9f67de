//! The snapshot taken at every (re)connect: one round of list actions, run concurrently,
//! then `ConfbridgeList` per running room. Every object gets a new live id.

use super::events::{channel_from, member_from, new_conference, presence};
use crate::live::ami::{ActionBuilder, AmiError, Reply, Requester};
use crate::live::facts::{Facts, Link};
use crate::live::value::{AmiValue, Grammar};
use std::time::SystemTime;

/// What the list actions said, ready to replace the facts.
#[derive(Debug)]
pub struct Snapshot {
    pub facts: Facts,
    /// `Asterisk 22.10.1`.
    pub server: String,
}

async fn ask(r: &Requester, a: ActionBuilder) -> Result<Reply, AmiError> {
    r.ask(a).await.map_err(|e| e.unwrap_or(AmiError::Closed))
}

/// A list action's events, or none when Asterisk says there is nothing to list (an `Error`
/// such as "No active conferences." or "Database entry not found").
async fn list(r: &Requester, a: ActionBuilder) -> Result<Reply, AmiError> {
    let reply = ask(r, a).await?;
    if !reply.is_success() {
        tracing::debug!(
            message = reply.message(),
            "AMI list action answered Error: read as empty"
        );
        return Ok(Reply::default());
    }
    Ok(reply)
}

/// Take the snapshot.
pub async fn take(r: Requester) -> Result<Snapshot, AmiError> {
    let (settings, channels, queues, rooms, dnd, presence_list) = tokio::try_join!(
        ask(&r, ActionBuilder::new("CoreSettings")),
        list(&r, ActionBuilder::new("CoreShowChannels")),
        list(&r, ActionBuilder::new("QueueStatus")),
        list(&r, ActionBuilder::new("ConfbridgeListRooms")),
        list(
            &r,
            ActionBuilder::new("DBGetTree").constant("Family", "DND")
        ),
        list(&r, ActionBuilder::new("PresenceStateList")),
    )?;
    let mut f = Facts::down("snapshot");
    for m in &channels.events {
        let ch = channel_from(m);
        f.channels.insert(ch.unique_id.clone(), ch);
    }
    for m in &queues.events {
        match m.event() {
            Some("QueueParams") => {
                f.queues
                    .insert(m.str("Queue").to_string(), m.num("Calls") as u32);
            }
            Some("QueueMember") => {
                let mb = member_from(m);
                f.members
                    .insert((mb.queue.clone(), mb.interface.clone()), mb);
            }
            Some("QueueEntry") => {
                if let Some(ch) = f.channels.get_mut(m.str("Uniqueid")) {
                    ch.queue = Some(m.str("Queue").to_string());
                }
            }
            _ => {}
        }
    }
    for m in &dnd.events {
        // Key: /DND/1001, Val: YES
        let key = m.str("Key").trim_start_matches('/');
        if let Some(ext) = key.strip_prefix("DND/") {
            if m.str("Val") == "YES" {
                f.dnd.insert(ext.to_string());
            }
        }
    }
    for m in &presence_list.events {
        presence(&mut f, m);
    }
    rooms_members(&r, &rooms, &mut f).await?;
    let server = format!(
        "Asterisk {}",
        settings
            .response
            .get("AsteriskVersion")
            .unwrap_or("(version unknown)")
    );
    f.link = Link::Up {
        since: SystemTime::now(),
        server: server.clone(),
    };
    Ok(Snapshot { facts: f, server })
}

/// `ConfbridgeList` for every room `ConfbridgeListRooms` listed, concurrently.
async fn rooms_members(r: &Requester, rooms: &Reply, f: &mut Facts) -> Result<(), AmiError> {
    let mut asks = Vec::new();
    for m in &rooms.events {
        let name = m.str("Conference");
        let mut c = new_conference();
        c.locked = m.flag("Locked");
        f.conferences.insert(name.to_string(), c);
        // A room name Asterisk reported is echoed back only if it passes the name grammar.
        if let Ok(v) = AmiValue::parse("conference", name, Grammar::Name) {
            asks.push(async move {
                let reply = list(
                    r,
                    ActionBuilder::new("ConfbridgeList").value("Conference", &v),
                )
                .await;
                (v, reply)
            });
        }
    }
    for (room, reply) in futures::future::join_all(asks).await {
        let reply = reply?;
        if let Some(c) = f.conferences.get_mut(room.as_str()) {
            c.members = reply
                .events
                .iter()
                .map(|m| m.str("Uniqueid").to_string())
                .collect();
        }
    }
    Ok(())
}
