//! The simulated backend: live state for demos and integrators, without a PBX. It keeps the
//! same [`Facts`] the Asterisk backend does and performs the same actions on them: DND
//! toggles, queue logins create agents (add, remove, pause, penalty), an originate creates two
//! bridged channels (the extension's device and the destination's) that hang up after
//! `[live] simulated_call_duration`, a transfer moves a channel, presence is kept. The link is
//! `Up { server: "simulated" }` from the start.

use super::action::{Action, ActionError};
use super::facts::Shared;
use super::facts::{Channel, Facts, Link, Member};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Finds the device (`peer`) of a configured extension by number, so that an originate or a
/// transfer to an extension rings that extension's device.
pub type Directory = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Handle {
    shared: Arc<Shared>,
    call_duration: Duration,
    counter: AtomicU64,
    directory: RwLock<Option<Directory>>,
    hangups: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Start the simulator: an empty PBX, connected.
pub fn start(cfg: &crate::config::LiveConfig) -> Handle {
    let mut facts = Facts::down("");
    facts.link = Link::Up {
        since: SystemTime::now(),
        server: "simulated".into(),
    };
    Handle {
        shared: Shared::new(facts),
        call_duration: cfg.simulated_call_duration,
        counter: AtomicU64::new(0),
        directory: RwLock::new(None),
        hangups: Mutex::new(Vec::new()),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Handle {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Tell the simulator how to find an extension's device (the embedded server passes a
    /// look-up in its store).
    pub fn set_directory(&self, d: Directory) {
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Some(d);
    }

    fn device_of_exten(&self, exten: &str) -> String {
        let d = self.directory.read().unwrap_or_else(|e| e.into_inner());
        d.as_ref()
            .and_then(|f| f(exten))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("SIM/{exten}"))
    }

    /// A new channel on `device` (a Local device gets its `;1` half, the phone's side).
    fn channel(&self, device: &str, caller: (&str, &str), exten: &str) -> Channel {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let half = if device.starts_with("Local/") {
            ";1"
        } else {
            ""
        };
        Channel {
            id: Uuid::new_v4(),
            caller_id_id: Uuid::new_v4(),
            unique_id: format!("sim.{n:08}"),
            linked_id: format!("sim.{n:08}"),
            name: format!("{device}-{n:08x}{half}"),
            state: 6,
            caller_id_name: caller.0.to_string(),
            caller_id_num: caller.1.to_string(),
            connected_name: String::new(),
            connected_num: String::new(),
            context: String::new(),
            exten: exten.to_string(),
            bridge: None,
            dialled_by: None,
            on_hold: false,
            recording: false,
            did: None,
            queue: None,
        }
    }

    /// Put `a` and `b` in a new bridge, b dialled by a, and hang both up after the call time.
    fn connect(&self, mut a: Channel, mut b: Channel) {
        let bridge = format!("sim-bridge-{}", a.unique_id);
        a.bridge = Some(bridge.clone());
        b.bridge = Some(bridge);
        b.dialled_by = Some(a.unique_id.clone());
        b.linked_id = a.linked_id.clone();
        a.connected_name = b.caller_id_name.clone();
        a.connected_num = b.exten.clone();
        let ids = [a.unique_id.clone(), b.unique_id.clone()];
        self.shared.update(|f| {
            f.events += 2;
            f.channels.insert(a.unique_id.clone(), a);
            f.channels.insert(b.unique_id.clone(), b);
        });
        let shared = self.shared.clone();
        let after = self.call_duration;
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            shared.update(|f| {
                for id in &ids {
                    if f.channels.remove(id).is_some() {
                        f.events += 1;
                    }
                }
            });
        });
        let mut tasks = self.hangups.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub async fn execute(&self, action: Action) -> Result<(), ActionError> {
        let down = self.shared.read(|f| match &f.link {
            Link::Down { since, reason } => Some(ActionError::Unavailable {
                since: *since,
                reason: reason.clone(),
            }),
            Link::Up { .. } => None,
        });
        if let Some(e) = down {
            return Err(e);
        }
        match action {
            Action::Originate {
                channel,
                exten,
                caller_name,
                caller_number,
                ..
            } => {
                let caller = (caller_name.as_str(), caller_number.as_str());
                let a = self.channel(channel.as_str(), caller, exten.as_str());
                let dest = self.device_of_exten(exten.as_str());
                let b = self.channel(&dest, caller, exten.as_str());
                self.connect(a, b);
                Ok(())
            }
            Action::Redirect { channel, exten, .. } => {
                self.redirect(channel.as_str(), exten.as_str())
            }
            other => self.shared.update(|f| apply(f, other)),
        }
    }

    /// A blind transfer: the other parties of the channel's bridge hang up, the channel is
    /// connected to the destination's device.
    fn redirect(&self, name: &str, exten: &str) -> Result<(), ActionError> {
        let moved = self.shared.update(|f| {
            let ch = f.channels.values().find(|c| c.name == name)?.clone();
            if let Some(bridge) = &ch.bridge {
                f.channels.retain(|_, c| {
                    c.unique_id == ch.unique_id || c.bridge.as_ref() != Some(bridge)
                });
            }
            f.channels.remove(&ch.unique_id);
            f.events += 1;
            Some(ch)
        });
        let Some(mut ch) = moved else {
            return Err(ActionError::NotFound(
                "A call segment with the given id does not exist (it has hung up).".into(),
            ));
        };
        ch.bridge = None;
        ch.dialled_by = None;
        ch.exten = exten.to_string();
        let dest = self.device_of_exten(exten);
        let b = self.channel(
            &dest,
            (&ch.caller_id_name.clone(), &ch.caller_id_num.clone()),
            exten,
        );
        self.connect(ch, b);
        Ok(())
    }

    pub async fn shutdown(self) {
        let tasks = std::mem::take(&mut *self.hangups.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
    }
}

/// The actions that only change facts.
fn apply(f: &mut Facts, action: Action) -> Result<(), ActionError> {
    f.events += 1;
    let gone = || ActionError::NotFound("The agent is not a member of that queue.".into());
    match action {
        Action::Dnd { extension, enabled } => {
            if enabled {
                f.dnd.insert(extension.to_string());
            } else {
                f.dnd.remove(extension.as_str());
            }
        }
        add @ Action::QueueAdd { .. } => log_in(f, add)?,
        Action::QueueRemove {
            queue, interface, ..
        } => {
            let key = (queue.to_string(), interface.to_string());
            match f.members.get(&key) {
                None => return Err(gone()),
                Some(m) if !m.dynamic => {
                    return Err(ActionError::Invalid {
                        field: "agent".into(),
                        message: "a static queue member cannot be logged out".into(),
                    })
                }
                Some(_) => {
                    f.members.remove(&key);
                }
            }
        }
        Action::QueuePause {
            queue,
            interface,
            paused,
            reason,
        } => {
            let m = f
                .members
                .get_mut(&(queue.to_string(), interface.to_string()))
                .ok_or_else(gone)?;
            m.paused = paused;
            m.paused_reason = reason.to_string();
            m.last_pause = now_secs();
        }
        Action::QueuePenalty {
            queue,
            interface,
            penalty,
        } => {
            f.members
                .get_mut(&(queue.to_string(), interface.to_string()))
                .ok_or_else(gone)?
                .penalty = penalty;
        }
        Action::Presence {
            extensions,
            state,
            note,
        } => {
            for e in extensions {
                f.presence
                    .insert(e.to_string(), (state.to_string(), note.to_string()));
            }
        }
        Action::Originate { .. } | Action::Redirect { .. } => {}
    }
    Ok(())
}

/// A queue login: a new dynamic member with a new live id.
fn log_in(f: &mut Facts, add: Action) -> Result<(), ActionError> {
    let Action::QueueAdd {
        queue,
        interface,
        state_interface,
        member_name,
        penalty,
        paused,
        ..
    } = add
    else {
        return Ok(());
    };
    let key = (queue.to_string(), interface.to_string());
    if f.members.contains_key(&key) {
        return Err(ActionError::Invalid {
            field: "extension".into(),
            message: "already logged in to this queue".into(),
        });
    }
    f.queues.entry(queue.to_string()).or_insert(0);
    f.members.insert(
        key,
        Member {
            id: Uuid::new_v4(),
            queue: queue.to_string(),
            interface: interface.to_string(),
            name: member_name.to_string(),
            state_interface: state_interface.to_string(),
            dynamic: true,
            paused,
            paused_reason: String::new(),
            penalty,
            status: 1,
            calls_taken: 0,
            last_call: 0,
            last_pause: 0,
            login_time: now_secs(),
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::value::{AmiValue, Grammar};

    fn v(s: &str, g: Grammar) -> AmiValue {
        AmiValue::parse("f", s, g).unwrap()
    }

    fn sim(ms: u64) -> Handle {
        start(&crate::live::LiveConfig {
            simulated_call_duration: Duration::from_millis(ms),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn queue_members_follow_add_pause_remove() {
        let h = sim(50);
        let add = || Action::QueueAdd {
            queue: v("400", Grammar::Name),
            interface: v("Local/1001@from-queue/n", Grammar::Device),
            state_interface: v("hint:1001@ext-local", Grammar::Device),
            member_name: v("Alice", Grammar::Text),
            penalty: 1,
            paused: false,
            extension: None,
        };
        h.execute(add()).await.unwrap();
        assert!(matches!(
            h.execute(add()).await,
            Err(ActionError::Invalid { .. })
        ));
        let pause = Action::QueuePause {
            queue: v("400", Grammar::Name),
            interface: v("Local/1001@from-queue/n", Grammar::Device),
            paused: true,
            reason: v("lunch", Grammar::Text),
        };
        h.execute(pause).await.unwrap();
        assert!(h.shared().read(|f| f.members.values().all(|m| m.paused)));
        let remove = || Action::QueueRemove {
            queue: v("400", Grammar::Name),
            interface: v("Local/1001@from-queue/n", Grammar::Device),
            extension: None,
        };
        h.execute(remove()).await.unwrap();
        assert!(matches!(
            h.execute(remove()).await,
            Err(ActionError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn an_originate_is_two_bridged_channels_that_end() {
        let h = sim(50);
        h.set_directory(Arc::new(|n: &str| Some(format!("Local/{n}@sim-phone"))));
        let o = Action::Originate {
            channel: v("Local/1001@sim-phone", Grammar::Device),
            context: v("from-internal", Grammar::Context),
            exten: v("1002", Grammar::Exten),
            caller_name: v("Alice", Grammar::Text),
            caller_number: v("1001", Grammar::Exten),
            timeout_ms: 30_000,
            auto_answer: false,
        };
        h.execute(o).await.unwrap();
        let names: Vec<String> = h.shared().read(|f| {
            let mut n: Vec<String> = f.channels.values().map(|c| c.name.clone()).collect();
            n.sort();
            n
        });
        assert_eq!(names.len(), 2);
        assert!(names[0].starts_with("Local/1001@sim-phone-") && names[0].ends_with(";1"));
        assert!(names[1].starts_with("Local/1002@sim-phone-"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(h.shared().read(|f| f.channels.is_empty()));
        h.shutdown().await;
    }
}
