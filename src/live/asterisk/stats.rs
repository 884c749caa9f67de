//! What the metrics and the status page show of the AMI connection.

use crate::live::facts::{Facts, Link};
use std::collections::HashSet;
use std::time::SystemTime;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AmiStats {
    /// Connected (snapshot in, events followed) since then; None while down.
    #[serde(serialize_with = "ser_opt_time")]
    pub connected_since: Option<SystemTime>,
    /// Why not connected, while down.
    pub down_reason: Option<String>,
    /// Down since then; None while up.
    #[serde(serialize_with = "ser_opt_time")]
    pub down_since: Option<SystemTime>,
    /// `Asterisk 22.10.1` while up.
    pub server: Option<String>,
    /// AMI events applied since the process started.
    pub events_total: u64,
    /// Calls now: distinct `Linkedid`s among the channels.
    pub calls_now: usize,
    /// Channels now (both halves of a Local channel count).
    pub channels_now: usize,
    /// Events per second over the last interval the status was read (0 until two readings).
    pub events_per_second: f64,
}

fn ser_opt_time<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
        None => s.serialize_none(),
    }
}

/// Events per second between two readings of [`AmiStats`].
#[derive(Debug, Default)]
pub struct EventRate {
    last: Option<(std::time::Instant, u64)>,
    rate: f64,
}

impl EventRate {
    /// Fill `stats.events_per_second` from the previous reading (at least 1 s ago; newer
    /// readings keep the last rate).
    pub fn fill(&mut self, stats: &mut AmiStats) {
        let now = std::time::Instant::now();
        match self.last {
            Some((t, n)) if now.duration_since(t).as_secs_f64() >= 1.0 => {
                let secs = now.duration_since(t).as_secs_f64();
                self.rate = stats.events_total.saturating_sub(n) as f64 / secs;
                self.last = Some((now, stats.events_total));
            }
            Some(_) => {}
            None => self.last = Some((now, stats.events_total)),
        }
        stats.events_per_second = self.rate;
    }
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
            events_per_second: 0.0,
        }
    }
}
