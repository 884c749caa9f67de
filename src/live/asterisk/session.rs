//! One connected session and the supervisor around it.
//!
//! Session: the snapshot (list actions, run as requests on this connection) while events are
//! held back; then the snapshot replaces the facts, the held events are applied on top, and
//! from then on every event changes the facts as it arrives. Requests (the snapshot's, the
//! actions') are written as they come and answered by `ActionID`. A Ping every
//! [`PING_EVERY`] proves a quiet connection alive; any request past its deadline ends it.
//!
//! Supervisor: connect, run the session, and when it ends (or the login fails) mark the link
//! Down (the facts emptied: nothing stale is served as live), wait with a capped backoff,
//! try again. Each distinct reason is logged once at error level.

use super::events::apply;
use super::snapshot::{self, Snapshot};
use crate::live::ami::{
    ActionBuilder, AmiError, AmiSettings, Conn, Message, Pending, Request, Requester,
};
use crate::live::facts::Shared;
use crate::live::facts::{Facts, Link};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch};

/// The event classes the backend follows (channels, bridges, device and presence state,
/// ConfBridge: `call`; queue members: `agent`; `VarSet` for `FROM_DID`: `dialplan`; shutdown
/// and reload: `system`).
pub const EVENTS: &str = "call,agent,dialplan,system";
/// A quiet connection is probed this often.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// Most events held back while the snapshot is taken.
pub const MAX_HELD_EVENTS: usize = 100_000;
/// How long to wait for `FullyBooted` after the login before taking the snapshot anyway.
pub const BOOT_WAIT: Duration = Duration::from_secs(3);
/// First and longest wait between connection attempts.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A session that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

pub struct Inputs {
    pub requests: mpsc::Receiver<Request>,
    pub stop: watch::Receiver<bool>,
}

/// Where the AMI login comes from: fixed, or read from FreePBX (`freepbx_settings`, with the
/// `[live] ami_*` overrides) before every connection attempt, so a changed `AMPMGRPASS` is
/// picked up at the next reconnect.
pub enum Source {
    Fixed(AmiSettings),
    Config(Box<crate::config::Config>),
}

impl Source {
    async fn settings(&self) -> Result<AmiSettings, super::settings::SettingsError> {
        match self {
            Source::Fixed(s) => Ok(s.clone()),
            Source::Config(cfg) => super::settings::settings_from(cfg).await,
        }
    }
}

/// How one connection attempt ended.
enum Attempt {
    Stopped,
    Failed { reason: String, stable: bool },
}

/// Run the backend until stopped.
pub async fn supervise(source: Source, shared: Arc<Shared>, mut inputs: Inputs) {
    let mut backoff = BACKOFF_FIRST;
    let mut last_reason: Option<String> = None;
    loop {
        if *inputs.stop.borrow() {
            break;
        }
        let (reason, stable) = match attempt(&source, &shared, &mut inputs, &mut last_reason).await
        {
            Attempt::Stopped => break,
            Attempt::Failed { reason, stable } => (reason, stable),
        };
        if stable {
            backoff = BACKOFF_FIRST;
        }
        if last_reason.as_deref() != Some(reason.as_str()) {
            tracing::error!(reason = %reason, "Asterisk (AMI) is unavailable; retrying with backoff");
            last_reason = Some(reason.clone());
        } else {
            tracing::debug!(reason = %reason, "AMI still unavailable");
        }
        go_down(&shared, reason);
        if wait(backoff, &mut inputs).await {
            break;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    go_down(&shared, "the Live API backend was stopped".into());
}

/// Resolve the login, connect, and run a session until it ends.
async fn attempt(
    source: &Source,
    shared: &Shared,
    inputs: &mut Inputs,
    last_reason: &mut Option<String>,
) -> Attempt {
    let settings = tokio::select! {
        s = source.settings() => s,
        _ = inputs.stop.changed() => return Attempt::Stopped,
    };
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            return Attempt::Failed {
                reason: e.to_string(),
                stable: false,
            }
        }
    };
    let opened = tokio::select! {
        c = Conn::open(&settings, EVENTS) => c,
        _ = inputs.stop.changed() => return Attempt::Stopped,
    };
    let conn = match opened {
        Ok(c) => c,
        Err(e) => {
            return Attempt::Failed {
                reason: e.to_string(),
                stable: false,
            }
        }
    };
    *last_reason = None;
    let began = Instant::now();
    match run(conn, shared, inputs).await {
        Ok(()) => Attempt::Stopped,
        Err(e) => Attempt::Failed {
            reason: e.to_string(),
            stable: began.elapsed() >= STABLE,
        },
    }
}

/// Mark the link Down (keeping the time it first went down) and forget all live state.
fn go_down(shared: &Shared, reason: String) {
    shared.update(|f| {
        let since = match &f.link {
            Link::Down { since, .. } => *since,
            Link::Up { .. } => SystemTime::now(),
        };
        *f = Facts {
            link: Link::Down { since, reason },
            events: f.events,
            ..Facts::down("")
        };
    });
}

/// Sleep `d`, dropping requests (their callers see the link Down). True when stopped.
async fn wait(d: Duration, inputs: &mut Inputs) -> bool {
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return false,
            _ = inputs.stop.changed() => return true,
            r = inputs.requests.recv() => if r.is_none() { return true },
        }
    }
}

/// State of one session's loop.
struct Session<'a> {
    conn: Conn,
    shared: &'a Shared,
    pending: Pending,
    /// Events held back until the snapshot is in.
    held: Option<Vec<Message>>,
    last_sent: Instant,
    /// Asterisk said `FullyBooted` (or [`BOOT_WAIT`] passed).
    booted: bool,
    /// Take the snapshot again (a `FullyBooted` came after it).
    relist: bool,
}

type SnapTask = tokio::task::JoinHandle<Result<Snapshot, AmiError>>;

/// The snapshot task's outcome; never ready while there is none.
async fn snapshot_done(t: &mut Option<SnapTask>) -> Result<Result<Snapshot, AmiError>, ()> {
    match t {
        Some(t) => t.await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// Run one session until the connection ends (Err) or the backend is stopped (Ok). The
/// snapshot starts once Asterisk says `FullyBooted` (sent at login when it is; after a
/// restart, when its modules are loaded), or after [`BOOT_WAIT`] for a user without the
/// `system` read class, which never sees that event.
async fn run(conn: Conn, shared: &Shared, inputs: &mut Inputs) -> Result<(), AmiError> {
    let (snap_tx, mut snap_rx) = mpsc::channel::<Request>(16);
    let mut snap_tx = Some(snap_tx);
    let mut snap_task: Option<SnapTask> = None;
    let mut started = Instant::now();
    let mut s = Session {
        conn,
        shared,
        pending: Pending::default(),
        held: Some(Vec::new()),
        last_sent: Instant::now(),
        booted: false,
        relist: false,
    };
    let boot_wait = tokio::time::sleep(BOOT_WAIT);
    tokio::pin!(boot_wait);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let result = loop {
        let step = tokio::select! {
            m = s.conn.read() => match m {
                Ok(m) => s.received(m),
                Err(e) => Err(e),
            },
            Some(req) = snap_rx.recv() => s.send(req).await,
            Some(req) = inputs.requests.recv() => s.send(req).await,
            r = snapshot_done(&mut snap_task), if s.held.is_some() => match r {
                Ok(Ok(snap)) => { s.install(snap, started); Ok(()) }
                Ok(Err(e)) => Err(e),
                Err(()) => Err(AmiError::Protocol("the snapshot task failed".into())),
            },
            _ = &mut boot_wait, if !s.booted => {
                tracing::debug!("no FullyBooted event (no 'system' read class?): taking the snapshot");
                s.booted = true;
                Ok(())
            }
            _ = tick.tick() => s.keepalive().await,
            _ = inputs.stop.changed() => {
                let _ = s.conn.send(ActionBuilder::new("Logoff")).await;
                break Ok(());
            }
        };
        if let Err(e) = step {
            break Err(e);
        }
        if std::mem::take(&mut s.relist) {
            tracing::info!("Asterisk finished booting after the snapshot: listing again");
            let (tx, rx) = mpsc::channel::<Request>(16);
            (snap_tx, snap_rx, s.held) = (Some(tx), rx, Some(Vec::new()));
        }
        if s.booted {
            if let Some(tx) = snap_tx.take() {
                started = Instant::now();
                snap_task = Some(tokio::spawn(snapshot::take(Requester::new(tx))));
            }
        }
    };
    if let Some(t) = snap_task {
        t.abort();
    }
    let e = result.as_ref().err().cloned().unwrap_or(AmiError::Closed);
    s.pending.fail_all(&e);
    result
}

impl Session<'_> {
    /// A message and every other one already decoded: replies to their requests, events
    /// to the facts (one update for the batch) or held back during the snapshot.
    fn received(&mut self, first: Message) -> Result<(), AmiError> {
        let mut events = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next {
            if let Some(m) = self.pending.offer(m)? {
                if m.event() == Some("FullyBooted") {
                    // After the snapshot: Asterisk finished booting only now (the snapshot was
                    // taken after BOOT_WAIT), so what it listed may be incomplete.
                    self.relist |= self.booted && self.held.is_none();
                    self.booted = true;
                }
                if m.event().is_some() {
                    events.push(m);
                }
            }
            next = self.conn.buffered();
        }
        if events.is_empty() {
            return Ok(());
        }
        match &mut self.held {
            Some(held) => {
                if held.len() + events.len() > MAX_HELD_EVENTS {
                    return Err(AmiError::Protocol(format!(
                        "more than {MAX_HELD_EVENTS} events arrived during the snapshot"
                    )));
                }
                held.extend(events);
            }
            None => self.shared.update(|f| {
                for e in &events {
                    apply(f, e);
                }
            }),
        }
        Ok(())
    }

    async fn send(&mut self, req: Request) -> Result<(), AmiError> {
        let name = req.action.name();
        match self.conn.send(req.action).await {
            Ok(id) => {
                self.pending.insert(id, name, Some(req.reply));
                self.last_sent = Instant::now();
                Ok(())
            }
            Err(AmiError::Unsafe(u)) => {
                let _ = req.reply.send(Err(AmiError::Unsafe(u)));
                Ok(())
            }
            Err(e) => {
                let _ = req.reply.send(Err(e.clone()));
                Err(e)
            }
        }
    }

    fn install(&mut self, snap: Snapshot, started: Instant) {
        let held = self.held.take().unwrap_or_default();
        let (channels, members) = (snap.facts.channels.len(), snap.facts.members.len());
        self.shared.update(|f| {
            let events = f.events;
            *f = snap.facts;
            f.events = events;
            for e in &held {
                apply(f, e);
            }
        });
        tracing::info!(server = %snap.server, channels, members, held = held.len(),
            snapshot_ms = started.elapsed().as_secs_f64() * 1e3,
            "connected to Asterisk (AMI): snapshot taken, following events");
    }

    async fn keepalive(&mut self) -> Result<(), AmiError> {
        if let Some(e) = self.pending.expired(Instant::now()) {
            return Err(e);
        }
        if self.last_sent.elapsed() >= PING_EVERY {
            let id = self.conn.send(ActionBuilder::new("Ping")).await?;
            self.pending.insert(id, "Ping", None);
            self.last_sent = Instant::now();
        }
        Ok(())
    }
}
