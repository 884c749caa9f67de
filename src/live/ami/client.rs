//! Requests over one connection, correlated by `ActionID`: a plain action completes with its
//! `Response`; a list action (`EventList: start`) collects its events until the one that
//! ends the list (`EventList: Complete` or an event named `…Complete`). Bounded: a list may
//! hold at most [`MAX_LIST_ITEMS`] events, and every request has a deadline, so a server that
//! stops answering mid-list ends the connection instead of holding memory forever.

use super::codec::{ActionBuilder, Message};
use super::conn::AmiError;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most events one list action may return (a PBX with 10,000 channels is far below it).
pub const MAX_LIST_ITEMS: usize = 200_000;
/// How long Asterisk may take to answer one request (a whole list included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What Asterisk answered: the response and, for a list action, its events (without the
/// closing `…Complete` event, which is `complete`).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub response: Message,
    pub events: Vec<Message>,
    pub complete: Option<Message>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.response.response() == Some("Success")
    }
    /// The response's `Message` header.
    pub fn message(&self) -> &str {
        self.response.str("Message")
    }
}

/// An action to send, and where its reply goes.
#[derive(Debug)]
pub struct Request {
    pub action: ActionBuilder,
    pub reply: oneshot::Sender<Result<Reply, AmiError>>,
}

/// The sending side of a session's request queue.
#[derive(Debug, Clone)]
pub struct Requester {
    tx: mpsc::Sender<Request>,
}

impl Requester {
    pub fn new(tx: mpsc::Sender<Request>) -> Requester {
        Requester { tx }
    }
    /// Send `action` and wait for its reply. `Err(None)`: the connection is gone.
    pub async fn ask(&self, action: ActionBuilder) -> Result<Reply, Option<AmiError>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { action, reply })
            .await
            .map_err(|_| None)?;
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(None),
        }
    }
}

struct PendingReq {
    name: &'static str,
    tx: Option<oneshot::Sender<Result<Reply, AmiError>>>,
    reply: Reply,
    listing: bool,
    deadline: Instant,
}

/// The requests waiting for their reply on one connection.
#[derive(Default)]
pub struct Pending {
    map: HashMap<u64, PendingReq>,
}

impl Pending {
    /// Track request `id` (the action `name`); `tx: None` for fire-and-check requests (Ping)
    /// whose only effect is the deadline.
    pub fn insert(
        &mut self,
        id: u64,
        name: &'static str,
        tx: Option<oneshot::Sender<Result<Reply, AmiError>>>,
    ) {
        self.map.insert(
            id,
            PendingReq {
                name,
                tx,
                reply: Reply::default(),
                listing: false,
                deadline: Instant::now() + REQUEST_TIMEOUT,
            },
        );
    }

    /// Take `m` if it answers a pending request; otherwise give it back.
    pub fn offer(&mut self, m: Message) -> Result<Option<Message>, AmiError> {
        let Some(id) = m.action_id().and_then(|a| a.trim().parse::<u64>().ok()) else {
            return Ok(Some(m));
        };
        let Some(p) = self.map.get_mut(&id) else {
            return Ok(Some(m));
        };
        if m.response().is_some() && !p.listing {
            let list = m
                .get("EventList")
                .is_some_and(|v| v.eq_ignore_ascii_case("start"));
            p.reply.response = m;
            if list && p.reply.response.response() == Some("Success") {
                p.listing = true;
                return Ok(None);
            }
            self.complete(id);
            return Ok(None);
        }
        if !p.listing || m.event().is_none() {
            // An event carrying the ActionID of a finished or plain request (OriginateResponse).
            return Ok(Some(m));
        }
        let ends = m
            .get("EventList")
            .is_some_and(|v| v.eq_ignore_ascii_case("Complete"))
            || m.event().is_some_and(|e| e.ends_with("Complete"));
        if ends {
            p.reply.complete = Some(m);
            self.complete(id);
        } else if p.reply.events.len() >= MAX_LIST_ITEMS {
            return Err(AmiError::Protocol(format!(
                "Asterisk sent more than {MAX_LIST_ITEMS} items for {}; closing the connection",
                p.name
            )));
        } else {
            p.reply.events.push(m);
        }
        Ok(None)
    }

    fn complete(&mut self, id: u64) {
        if let Some(mut p) = self.map.remove(&id) {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Ok(p.reply));
            }
        }
    }

    /// The first request past its deadline, as the error that ends the connection.
    pub fn expired(&self, now: Instant) -> Option<AmiError> {
        self.map
            .values()
            .find(|p| p.deadline <= now)
            .map(|p| AmiError::Timeout(p.name))
    }

    /// Fail every waiting request with `e` (the connection ended).
    pub fn fail_all(&mut self, e: &AmiError) {
        for (_, mut p) in self.map.drain() {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(h: &[(&str, &str)]) -> Message {
        Message::from_pairs(h)
    }

    #[test]
    fn list_is_collected_by_action_id() {
        let mut p = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        p.insert(3, "QueueStatus", Some(tx));
        let r = msg(&[
            ("Response", "Success"),
            ("ActionID", "3"),
            ("EventList", "start"),
        ]);
        assert!(p.offer(r).unwrap().is_none());
        let other = msg(&[("Event", "Newchannel"), ("Uniqueid", "1")]);
        assert!(p.offer(other).unwrap().is_some());
        let item = msg(&[
            ("Event", "QueueParams"),
            ("ActionID", "3"),
            ("Queue", "400"),
        ]);
        assert!(p.offer(item).unwrap().is_none());
        assert!(rx.try_recv().is_err());
        let done = msg(&[
            ("Event", "QueueStatusComplete"),
            ("ActionID", "3"),
            ("EventList", "Complete"),
        ]);
        assert!(p.offer(done).unwrap().is_none());
        let reply = rx.try_recv().unwrap().unwrap();
        assert_eq!(reply.events.len(), 1);
        assert!(p.expired(Instant::now() + REQUEST_TIMEOUT * 2).is_none());
    }

    #[test]
    fn a_silent_server_expires() {
        let mut p = Pending::default();
        p.insert(1, "CoreShowChannels", None);
        let later = Instant::now() + REQUEST_TIMEOUT + Duration::from_millis(1);
        assert_eq!(
            p.expired(later),
            Some(AmiError::Timeout("CoreShowChannels"))
        );
    }
}
