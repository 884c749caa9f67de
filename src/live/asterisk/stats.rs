//! What the metrics and the status page show of the AMI connection.

use crate::live::facts::{Facts, Link};
use std::collections::HashSet;
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq)]
pub struct AmiStats {
    /// Connected (snapshot in, events followed) since then; None while down.
    pub connected_since: Option<SystemTime>,
    /// Why not connected, while down.
    pub down_reason: Option<String>,
    /// Down since then; None while up.
    pub down_since: Option<SystemTime>,
    /// `Asterisk 22.10.1` while up.
    pub server: Option<String>,
    /// AMI events applied since the process started.
    pub events_total: u64,
    /// Calls now: distinct `Linkedid`s among the channels.
    pub calls_now: usize,
    /// Channels now (both halves of a Local channel count).
    pub channels_now: usize,
}

impl AmiStats {
    pub fn of(f: &Facts) -> AmiStats {
        let calls: HashSet<&str> = f.channels.values().map(|c| c.linked_id.as_str()).collect();
        let (connected_since, server, down_since, down_reason) = match &f.link {
            Link::Up { since, server } => (Some(*since), Some(server.clone()), None, None),
            Link::Down { since, reason } => (None, None, Some(*since), Some(reason.clone())),
        };
        AmiStats {
            connected_since,
            down_reason,
            down_since,
            server,
            events_total: f.events,
            calls_now: calls.len(),
            channels_now: f.channels.len(),
        }
    }
}
