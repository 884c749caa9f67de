//! The login lockout: failed authentications counted per (source network, user name).
//!
//! A client address is reduced to its network before counting: IPv4 /24, IPv6 /64, and every
//! loopback address (127.0.0.0/8, ::1) is one network, so a client cannot get a fresh budget by
//! changing the last bits of its address. The user name is the second half of the key, so
//! failures for one name never block another, and failures from one network never block the
//! same name from another network. Every user name other than the configured one counts as
//! one name ("other"): a flood of invented names can neither grow the table nor wash a block
//! out of it. The agent's own requests to the endpoint it started do not come here at all
//! (see [`super::auth::Access::authenticate`]).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The network a failure is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Every loopback address: one local machine, one budget.
    Loopback,
    Net(IpNet),
}

impl Network {
    /// The network of a client address (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn of(ip: IpAddr) -> Network {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return Network::Loopback;
        }
        let net = match ip {
            IpAddr::V4(a) => Ipv4Net::new(a, 24).map(|n| IpNet::V4(n.trunc())),
            IpAddr::V6(a) => Ipv6Net::new(a, 64).map(|n| IpNet::V6(n.trunc())),
        };
        match net {
            Ok(n) => Network::Net(n),
            // Prefix lengths 24 and 64 are always valid; keep the host route just in case.
            Err(_) => Network::Net(IpNet::from(ip)),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Network::Loopback => f.write_str("loopback (127.0.0.0/8, ::1)"),
            Network::Net(n) => write!(f, "{n}"),
        }
    }
}

/// Which user name a failure was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserName {
    /// The configured `[server] username`.
    Configured,
    /// Any other name (or none that could be decoded).
    Other,
}

/// One lockout counter.
pub type Key = (Network, UserName);

#[derive(Default)]
struct Failures {
    /// Times of the recent failures (at most `limit`).
    times: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Failures {
    fn last(&self) -> Option<Instant> {
        self.times.back().copied()
    }
}

/// Above this many tracked keys, entries with nothing recent are forgotten (and, if that is
/// not enough, the one whose last failure is oldest, blocked ones last).
const MAX_TRACKED: usize = 4096;

/// Failed authentications per key, and the keys currently blocked.
pub struct Lockout {
    pub limit: u32,
    pub window: Duration,
    pub block: Duration,
    by_key: Mutex<HashMap<Key, Failures>>,
}

impl Lockout {
    pub fn new(limit: u32, window: Duration, block: Duration) -> Lockout {
        Lockout {
            limit: limit.max(1),
            window,
            block,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time left of the block on `key`, if it is blocked.
    pub fn blocked(&self, key: Key, now: Instant) -> Option<Duration> {
        let mut map = self.map();
        let f = map.get_mut(&key)?;
        match f.blocked_until {
            Some(t) if now < t => Some(t - now),
            Some(_) => {
                // The episode is over: start afresh.
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Record a failure; true when it starts a block (one warning per episode).
    pub fn failed(&self, key: Key, now: Instant) -> bool {
        let mut map = self.map();
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            let window = self.window;
            map.retain(|_, f| {
                f.blocked_until.is_some_and(|t| now < t)
                    || f.last().is_some_and(|t| now.duration_since(t) < window)
            });
            if map.len() >= MAX_TRACKED {
                // Still full of recent entries: forget the stalest, a running block last.
                let oldest = map
                    .iter()
                    .min_by_key(|(_, f)| (f.blocked_until.is_some(), f.last()))
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        let f = map.entry(key).or_default();
        while f
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            f.times.pop_front();
        }
        f.times.push_back(now);
        if f.times.len() > self.limit as usize {
            f.times.pop_front();
        }
        if f.times.len() >= self.limit as usize && f.blocked_until.is_none() {
            f.blocked_until = Some(now + self.block);
            return true;
        }
        false
    }

    /// A correct login clears the count of its own key only.
    pub fn succeeded(&self, key: Key) {
        self.map().remove(&key);
    }

    /// Keys tracked now (for tests of the table's bound).
    pub fn tracked(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        assert_eq!(Network::of(ip("127.0.0.1")), Network::Loopback);
        assert_eq!(Network::of(ip("127.45.6.7")), Network::Loopback);
        assert_eq!(Network::of(ip("::1")), Network::Loopback);
        assert_eq!(Network::of(ip("::ffff:127.0.0.9")), Network::Loopback);
        let a = Network::of(ip("192.0.2.17"));
        assert_eq!(a, Network::of(ip("192.0.2.250")));
        assert_eq!(a, Network::of(ip("::ffff:192.0.2.3")));
        assert_ne!(a, Network::of(ip("192.0.3.17")));
        assert_eq!(a.to_string(), "192.0.2.0/24");
        let b = Network::of(ip("fd00::2"));
        assert_eq!(b, Network::of(ip("fd00::ffff:1234")));
        assert_ne!(b, Network::of(ip("fd00:0:0:1::2")));
        assert_eq!(b.to_string(), "fd00::/64");
    }

    #[test]
    fn keys_are_counted_apart() {
        let l = Lockout::new(3, Duration::from_secs(60), Duration::from_secs(60));
        let t0 = Instant::now();
        let lo = (Network::Loopback, UserName::Configured);
        let lo_other = (Network::Loopback, UserName::Other);
        let lan = (Network::of(ip("192.0.2.2")), UserName::Configured);
        assert!(!l.failed(lo, t0));
        assert!(!l.failed(lo, t0));
        assert!(l.failed(lo, t0));
        assert!(l.blocked(lo, t0).is_some());
        assert!(l.blocked(lo_other, t0).is_none());
        assert!(l.blocked(lan, t0).is_none());
        // A fourth failure in the same episode does not start a second one (one warning).
        assert!(!l.failed(lo, t0));
    }

    #[test]
    fn ends_and_old_failures_expire() {
        let l = Lockout::new(2, Duration::from_secs(10), Duration::from_secs(5));
        let k = (Network::of(ip("10.0.0.1")), UserName::Configured);
        let t0 = Instant::now();
        assert!(!l.failed(k, t0));
        // The first failure is outside the window of the second: no block.
        assert!(!l.failed(k, t0 + Duration::from_secs(11)));
        assert!(l.failed(k, t0 + Duration::from_secs(12)));
        assert_eq!(
            l.blocked(k, t0 + Duration::from_secs(16)),
            Some(Duration::from_secs(1))
        );
        assert!(l.blocked(k, t0 + Duration::from_secs(17)).is_none());
        // A fresh episode needs `limit` new failures.
        assert!(!l.failed(k, t0 + Duration::from_secs(18)));
    }

    #[test]
    fn the_table_is_bounded_and_keeps_recent_blocks() {
        let l = Lockout::new(2, Duration::from_secs(60), Duration::from_secs(60));
        let t0 = Instant::now();
        let victim = (Network::of(ip("198.51.100.1")), UserName::Configured);
        assert!(!l.failed(victim, t0));
        assert!(l.failed(victim, t0));
        // Failures from many IPv6 networks, all recent.
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let a = std::net::Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 1);
            l.failed(
                (Network::of(IpAddr::V6(a)), UserName::Other),
                t0 + Duration::from_secs(1),
            );
        }
        assert!(l.tracked() <= MAX_TRACKED);
        assert!(l.blocked(victim, t0 + Duration::from_secs(2)).is_some());
    }
}
