//! The Asterisk backend of the Live API against a real Asterisk 22 (one private instance per
//! test, tests/support/asterisk.rs): its facts follow real calls, queue members, DND,
//! conferences and presence; every action's effect is checked through Asterisk itself (an
//! independent AMI probe: QueueStatus, DBGet, Getvar DEVICE_STATE, ConfbridgeList,
//! PresenceStateList, CoreShowChannels); a restart gives new ids; a wrong password is one
//! clear reason, retried with backoff. A FAKE AMI server (named FAKE) produces the faults a
//! real Asterisk cannot: a half-written event line, a server that stops answering mid-list,
//! an over-long line.

use crate::support;

mod calls;
mod fake;
mod link;

use isymphony_sync::live::action::{Action, ActionError};
use isymphony_sync::live::ami::{ActionBuilder, AmiSettings, Message};
use isymphony_sync::live::asterisk::{self, Handle};
use isymphony_sync::live::facts::{Facts, Link};
use isymphony_sync::live::value::{AmiValue, Grammar};
use isymphony_sync::secret::Secret;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::asterisk::{Asterisk, Probe, Recorder};
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
