//! One writer among several agents: a MariaDB `GET_LOCK` on a dedicated connection.
//!
//! Agents pointed at the same FreePBX database and core server (an HA pair, a second host)
//! compete for one named lock; the holder is the leader and the only one that writes. The
//! lock lives as long as the connection: when the leader dies (even by SIGKILL) the server
//! closes its connection and frees the lock, and a standby, which retries every
//! `retry_interval`, takes over.
//!
//! The leader checks every `watch` (500 ms) that it still holds the lock, with
//! `IS_USED_LOCK(name) = CONNECTION_ID()` on the lock connection, so that the connection's
//! death (a `KILL`, a server restart) ends leadership within that time. A check that does not
//! answer within `ping_timeout` (a network cut) counts as lost too. Each acquisition starts a
//! new *term* ([`LockLink`]); a pass remembers the term it started in and, before each write
//! stage, asks for a confirmation: the same check, run on the lock connection at once after
//! the request arrived. (A `DO SLEEP` kept in flight instead cost MariaDB 0.2 ms of CPU per
//! statement, ten a second, and made each confirmation wait for it: 50 ms on average.) The connection's
//! `wait_timeout` is lowered so that a leader host that vanishes without closing TCP loses
//! the lock within about that time; `ping_timeout` is shorter, so the old leader stops first.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// This agent's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    Leader,
    Standby,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

/// The lock name for a core server slug in a FreePBX database. MariaDB limits lock names to
/// 64 characters; longer names are replaced by a hash of the same inputs. The database name
/// is part of the name because locks are per MariaDB server, which may host several FreePBX
/// databases.
pub fn lock_name(core_server: &str, database: &str) -> String {
    let name = format!("isymphony-sync:{core_server}@{database}");
    if name.len() <= 64 {
        return name;
    }
    format!("isymphony-sync:{}", crate::digest::sha1_hex(&name))
}

/// Timing of the election.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElectionTiming {
    /// How often a standby tries to take the lock.
    pub(crate) retry_interval: Duration,
    /// How often the leader checks that it still holds the lock (confirmations are checked
    /// as they arrive).
    pub(crate) watch: Duration,
    /// A check that takes longer than this means the connection is gone.
    pub(crate) ping_timeout: Duration,
    /// Server-side idle timeout of the lock connection (seconds).
    pub(crate) wait_timeout_secs: u32,
}

impl Default for ElectionTiming {
    fn default() -> Self {
        ElectionTiming {
            retry_interval: Duration::from_secs(1),
            // Writes never rely on it (each write stage is confirmed on the lock connection
            // first); it only makes an idle leader notice a lost lock. Every statement costs
            // MariaDB ~0.35 ms of CPU when they come one at a time, so twice a second.
            watch: Duration::from_millis(500),
            ping_timeout: Duration::from_secs(5),
            wait_timeout_secs: 15,
        }
    }
}

/// The message of a confirmation refused because the lock is gone.
pub(crate) const LOCK_LOST: &str = "the writer lock was lost (another agent may lead now)";

/// Why the writer lock could not be taken, kept or confirmed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("{}", LOCK_LOST)]
    Lost,
    #[error("the leader election has stopped")]
    ElectionStopped,
    #[error("the writer lock could not be confirmed within {} s", .0.as_secs_f64())]
    Unconfirmed(Duration),
    #[error("the lock is no longer held by this connection")]
    NotHeld,
    #[error("the database did not answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error(transparent)]
    Database(#[from] mysql_async::Error),
}

/// A request to confirm on the lock connection that `term` is still held.
struct Confirm {
    term: u64,
    reply: oneshot::Sender<Result<(), LockError>>,
}

/// What passes need from the election: the term held now and confirmations of it. One link
/// lives as long as the daemon; each run of the election serves it in turn.
pub(crate) struct LockLink {
    /// The term held now; 0 while not holding the lock.
    term: watch::Sender<u64>,
    next: AtomicU64,
    tx: mpsc::UnboundedSender<Confirm>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Confirm>>,
}

impl LockLink {
    pub(crate) fn new() -> Arc<LockLink> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(LockLink {
            term: watch::channel(0).0,
            next: AtomicU64::new(0),
            tx,
            rx: tokio::sync::Mutex::new(rx),
        })
    }

    /// The term held now, if this agent holds the lock.
    pub(crate) fn term(&self) -> Option<u64> {
        let t = *self.term.borrow();
        (t != 0).then_some(t)
    }

    /// Confirm, with a query on the lock connection made after this call, that `term` is
    /// still held. `Err` says why not (lost, not answered within `within`).
    pub(crate) async fn confirm(&self, term: u64, within: Duration) -> Result<(), LockError> {
        if self.term() != Some(term) {
            return Err(LockError::Lost);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Confirm { term, reply })
            .map_err(|_| LockError::ElectionStopped)?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(LockError::Lost),
            Err(_) => Err(LockError::Unconfirmed(within)),
        }
    }

    fn begin(&self) -> u64 {
        let t = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        self.term.send_replace(t);
        t
    }

    fn end(&self) {
        self.term.send_replace(0);
    }
}

/// Try to take the lock on `conn`: Ok(true) when held.
async fn try_lock(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let got: Option<Option<i64>> = conn.exec_first("SELECT GET_LOCK(?, 0)", (name,)).await?;
    Ok(matches!(got, Some(Some(1))))
}

/// Is the lock still held by this connection? A text query with the name as a hex literal
/// (no quoting to get wrong): it runs ten times a second, and a prepared statement cost both
/// sides more.
async fn still_held(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    let got: Option<Option<i64>> = conn
        .query_first(format!("SELECT IS_USED_LOCK(X'{hex}') = CONNECTION_ID()"))
        .await?;
    Ok(matches!(got, Some(Some(1))))
}

/// Run a query bounded by `limit`; a timeout is an error like any other.
async fn bounded<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, LockError> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(LockError::Timeout(limit)),
    }
}

/// One round as leader: wait for a confirmation request or the next check, whichever comes
/// first, then check on the lock connection and answer every confirmation that arrived.
/// `Err`: the lock is lost.
async fn lead_round(
    conn: &mut Conn,
    name: &str,
    term: u64,
    timing: &ElectionTiming,
    confirms: &mut mpsc::UnboundedReceiver<Confirm>,
) -> Result<(), LockError> {
    let mut pending = Vec::new();
    tokio::select! {
        c = confirms.recv() => match c {
            Some(c) => pending.push(c),
            // No sender left (never while the daemon runs): check at the usual pace.
            None => tokio::time::sleep(timing.watch).await,
        },
        _ = tokio::time::sleep(timing.watch) => {}
    }
    while let Ok(c) = confirms.try_recv() {
        pending.push(c);
    }
    let result = match bounded(timing.ping_timeout, still_held(conn, name)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(LockError::NotHeld),
        Err(e) => Err(e),
    };
    for c in pending {
        let answer = match &result {
            Ok(()) if c.term == term => Ok(()),
            _ => Err(LockError::Lost),
        };
        let _ = c.reply.send(answer);
    }
    result
}

/// Open the lock connection if needed and try to take the lock.
async fn try_take(
    conn: &mut Option<Conn>,
    opts: &Opts,
    name: &str,
    timing: &ElectionTiming,
) -> Result<bool, LockError> {
    let step = async {
        if conn.is_none() {
            let mut c = Conn::new(opts.clone()).await?;
            c.query_drop(format!(
                "SET SESSION wait_timeout = {}",
                timing.wait_timeout_secs.max(2)
            ))
            .await?;
            *conn = Some(c);
        }
        match conn.as_mut() {
            Some(c) => try_lock(c, name).await,
            None => Ok(false),
        }
    };
    bounded(timing.ping_timeout, step).await
}

/// One attempt of a standby to take the lock; true when taken. Errors are logged once each.
async fn standby_round(
    conn: &mut Option<Conn>,
    opts: &Opts,
    name: &str,
    timing: &ElectionTiming,
    last_error: &mut Option<String>,
) -> bool {
    match try_take(conn, opts, name, timing).await {
        Ok(held) => {
            *last_error = None;
            held
        }
        Err(e) => {
            // Logged once per distinct message: a down database is not a warning a second.
            let msg = e.to_string();
            if last_error.as_deref() != Some(&msg) {
                tracing::warn!(error = %msg, "leader election: database connection failed");
                *last_error = Some(msg);
            }
            *conn = None;
            false
        }
    }
}

/// Run the election until `shutdown` is cancelled, publishing the role on `role` and the term
/// on `link`. On shutdown the lock is released (so a standby takes over at once) and the
/// connection closed.
pub(crate) async fn run(
    opts: Opts,
    name: String,
    timing: ElectionTiming,
    role: watch::Sender<Role>,
    link: Arc<LockLink>,
    shutdown: CancellationToken,
) {
    let mut confirms = link.rx.lock().await;
    let mut conn: Option<Conn> = None;
    let mut term: Option<u64> = None;
    let mut last_error: Option<String> = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if let (Some(t), Some(c)) = (term, conn.as_mut()) {
            let Err(e) = lead_round(c, &name, t, &timing, &mut confirms).await else {
                continue;
            };
            // The term ends before anyone hears of the new role: no write starts after.
            link.end();
            term = None;
            conn = None;
            tracing::warn!(lock = %name, error = %e, "lost leadership; now standby");
            role.send_replace(Role::Standby);
            // Compete again only after a retry interval, like any standby: the others go
            // first, and a flapping connection does not flap the role.
        } else {
            // Standby: refuse what was asked meanwhile, then try to take the lock.
            while let Ok(c) = confirms.try_recv() {
                let _ = c.reply.send(Err(LockError::Lost));
            }
            if standby_round(&mut conn, &opts, &name, &timing, &mut last_error).await {
                term = Some(link.begin());
                tracing::info!(lock = %name, "became leader");
                role.send_replace(Role::Leader);
                continue;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(timing.retry_interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    link.end();
    if let Some(mut c) = conn.take() {
        if term.is_some() {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                c.exec_drop("SELECT RELEASE_LOCK(?)", (name.as_str(),)),
            )
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), c.disconnect()).await;
    }
    role.send_replace(Role::Standby);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testdb::TestDb;

    /// `run` for one candidate on its own role and stop channels.
    fn candidate(
        opts: Opts,
        name: &str,
        timing: ElectionTiming,
        link: Arc<LockLink>,
    ) -> (
        watch::Receiver<Role>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let (role, rx) = watch::channel(Role::Standby);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            opts,
            name.to_string(),
            timing,
            role,
            link,
            stop.clone(),
        ));
        (rx, stop, task)
    }

    fn fast() -> ElectionTiming {
        ElectionTiming {
            retry_interval: Duration::from_millis(100),
            ..ElectionTiming::default()
        }
    }

    async fn wait_for(rx: &mut watch::Receiver<Role>, want: Role) {
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| *r == want))
            .await
            .expect("role did not change in time")
            .unwrap();
    }

    #[test]
    fn lock_names_fit_mariadb() {
        assert_eq!(
            lock_name("default", "asterisk"),
            "isymphony-sync:default@asterisk"
        );
        let long = lock_name(&"x".repeat(100), "asterisk");
        assert!(long.len() <= 64, "{long}");
        assert_ne!(long, lock_name(&"y".repeat(100), "asterisk"));
    }

    #[tokio::test]
    async fn one_leader_and_takeover_when_it_stops() {
        let db = TestDb::new("leader").await;
        let name = lock_name("default", &db.name);
        let (mut a_rx, a_stop, a) = candidate(db.opts(), &name, fast(), LockLink::new());
        wait_for(&mut a_rx, Role::Leader).await;

        let (mut b_rx, b_stop, b) = candidate(db.opts(), &name, fast(), LockLink::new());
        // B keeps trying but stays standby while A holds the lock.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(*b_rx.borrow(), Role::Standby);
        assert_eq!(*a_rx.borrow(), Role::Leader);

        a_stop.cancel();
        a.await.unwrap();
        assert_eq!(*a_rx.borrow(), Role::Standby);
        wait_for(&mut b_rx, Role::Leader).await;

        b_stop.cancel();
        b.await.unwrap();
    }

    #[tokio::test]
    async fn leadership_is_lost_when_the_connection_is_killed() {
        let db = TestDb::new("leaderkill").await;
        let name = lock_name("default", &db.name);
        let (mut rx, stop, task) = candidate(db.opts(), &name, fast(), LockLink::new());
        wait_for(&mut rx, Role::Leader).await;

        // Kill the lock connection from outside, as a server restart or network cut would.
        let mut admin = Conn::new(db.opts()).await.unwrap();
        let holder: Option<Option<u64>> = admin
            .exec_first("SELECT IS_USED_LOCK(?)", (name.as_str(),))
            .await
            .unwrap();
        let id = holder.flatten().unwrap();
        admin.query_drop(format!("KILL {id}")).await.unwrap();

        // Whether the next check sees the loss or the old holder wins the lock right back on
        // a new connection, the lock must end up held by a *different* connection, and the
        // role must have gone through standby.
        wait_for(&mut rx, Role::Standby).await;
        wait_for(&mut rx, Role::Leader).await;
        let holder2: Option<Option<u64>> = admin
            .exec_first("SELECT IS_USED_LOCK(?)", (name.as_str(),))
            .await
            .unwrap();
        assert_ne!(holder2.flatten(), Some(id));
        admin.disconnect().await.unwrap();
        stop.cancel();
        task.await.unwrap();
    }

    async fn holder(admin: &mut Conn, name: &str) -> Option<u64> {
        let h: Option<Option<u64>> = admin
            .exec_first("SELECT IS_USED_LOCK(?)", (name,))
            .await
            .unwrap();
        h.flatten()
    }

    /// With a standby retry of 30 s, only the leader's own check (every `watch`) can end
    /// leadership quickly.
    #[tokio::test]
    async fn a_killed_lock_connection_is_noticed_at_once() {
        let db = TestDb::new("leadernotice").await;
        let name = lock_name("default", &db.name);
        let timing = ElectionTiming {
            retry_interval: Duration::from_secs(30),
            ..ElectionTiming::default()
        };
        let link = LockLink::new();
        let (mut rx, stop, task) = candidate(db.opts(), &name, timing, link.clone());
        wait_for(&mut rx, Role::Leader).await;
        let term = link.term().expect("a term while leading");
        // A confirmation is checked on the lock connection as soon as it arrives.
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = std::time::Instant::now();
            link.confirm(term, Duration::from_secs(5))
                .await
                .expect("confirmed on the lock connection");
            times.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(37)).await;
        }
        let max = times.iter().max().copied().unwrap_or_default();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        eprintln!(
            "confirmation of the lock: mean {mean:?}, max {max:?} (watch {:?})",
            timing.watch
        );
        assert!(max < timing.watch + Duration::from_secs(1), "{max:?}");

        let mut admin = Conn::new(db.opts()).await.unwrap();
        let id = holder(&mut admin, &name).await.unwrap();
        let t0 = std::time::Instant::now();
        admin.query_drop(format!("KILL {id}")).await.unwrap();
        wait_for(&mut rx, Role::Standby).await;
        let took = t0.elapsed();
        eprintln!("killed lock connection noticed after {took:?}");
        assert!(took < timing.watch + Duration::from_millis(500), "{took:?}");
        assert_eq!(link.term(), None);
        let e = link
            .confirm(term, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), LOCK_LOST);
        admin.disconnect().await.unwrap();
        stop.cancel();
        task.await.unwrap();
    }

    /// A confirmation is a query on the lock connection made after the request: a
    /// connection killed just before it is refused, and an old term is never confirmed by a
    /// newer one.
    #[tokio::test]
    async fn confirmations_are_refused_after_a_kill_and_for_old_terms() {
        let db = TestDb::new("leaderconfirm").await;
        let name = lock_name("default", &db.name);
        let link = LockLink::new();
        let (mut rx, stop, task) = candidate(db.opts(), &name, fast(), link.clone());
        wait_for(&mut rx, Role::Leader).await;
        let first = link.term().unwrap();
        let mut admin = Conn::new(db.opts()).await.unwrap();
        let mut refused = 0;
        for _ in 0..5 {
            let id = holder(&mut admin, &name).await.unwrap();
            let term = link.term().unwrap();
            // Kill and confirm at once: whichever the leader sees first, the answer is no.
            let (k, c) = tokio::join!(
                admin.query_drop(format!("KILL {id}")),
                link.confirm(term, Duration::from_secs(5))
            );
            k.unwrap();
            if c.is_err() {
                refused += 1;
            }
            // Confirmation after the kill was noticed: always refused.
            wait_for(&mut rx, Role::Standby).await;
            assert!(link.confirm(term, Duration::from_secs(5)).await.is_err());
            wait_for(&mut rx, Role::Leader).await;
            let now = link.term().unwrap();
            assert!(now > term);
            assert!(link.confirm(first, Duration::from_secs(5)).await.is_err());
            link.confirm(now, Duration::from_secs(5)).await.unwrap();
        }
        eprintln!("confirmations sent with the kill and refused: {refused} of 5");
        admin.disconnect().await.unwrap();
        stop.cancel();
        task.await.unwrap();
    }

    /// A TCP relay to MariaDB that can go silent: after `cut`, bytes in both directions are
    /// read and dropped and nothing is closed, as when a network path dies.
    async fn blackhole_relay(upstream: String) -> (u16, Arc<std::sync::atomic::AtomicBool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let c2 = cut.clone();
        tokio::spawn(async move {
            while let Ok((down, _)) = l.accept().await {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                for (mut r, mut w, cut) in [
                    (
                        Box::new(dr) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                        Box::new(uw) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                        c2.clone(),
                    ),
                    (Box::new(ur), Box::new(dw), c2.clone()),
                ] {
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 16384];
                        loop {
                            match r.read(&mut buf).await {
                                // After a cut the other side hears nothing, not even a close.
                                Ok(0) | Err(_) if cut.load(Ordering::SeqCst) => {
                                    std::future::pending::<()>().await;
                                }
                                Ok(0) | Err(_) => return,
                                Ok(n) if !cut.load(Ordering::SeqCst) => {
                                    if w.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(_) => {}
                            }
                        }
                    });
                }
            }
        });
        (port, cut)
    }

    /// A network cut gives no error at all: the unanswered check ends leadership
    /// within `watch + ping_timeout`, while MariaDB still holds the lock for the dead
    /// connection until its `wait_timeout`, so nobody else can write before the old leader
    /// has stopped.
    #[tokio::test]
    async fn a_network_cut_ends_leadership_before_the_server_frees_the_lock() {
        let db = TestDb::new("leadercut").await;
        let name = lock_name("default", &db.name);
        let o = db.opts();
        let (port, cut) = blackhole_relay(format!("{}:{}", o.ip_or_hostname(), o.tcp_port())).await;
        let via: Opts = mysql_async::OptsBuilder::from_opts(o)
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .prefer_socket(false)
            .into();
        let timing = ElectionTiming {
            retry_interval: Duration::from_millis(100),
            watch: Duration::from_millis(100),
            ping_timeout: Duration::from_secs(1),
            wait_timeout_secs: 4,
        };
        let link = LockLink::new();
        let (mut rx, stop, task) = candidate(via, &name, timing, link.clone());
        wait_for(&mut rx, Role::Leader).await;
        let term = link.term().unwrap();
        let mut admin = Conn::new(db.opts()).await.unwrap();
        let id = holder(&mut admin, &name).await.unwrap();

        cut.store(true, Ordering::SeqCst);
        let t0 = std::time::Instant::now();
        wait_for(&mut rx, Role::Standby).await;
        let standby = t0.elapsed();
        assert!(link.confirm(term, Duration::from_secs(5)).await.is_err());
        assert_eq!(
            holder(&mut admin, &name).await,
            Some(id),
            "the server still holds the lock for the cut connection"
        );
        let freed = loop {
            if holder(&mut admin, &name).await != Some(id) {
                break t0.elapsed();
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "never freed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!(
            "network cut: standby after {standby:?}, lock freed by the server after {freed:?}"
        );
        assert!(standby < Duration::from_millis(2500), "{standby:?}");
        assert!(standby < freed, "{standby:?} vs {freed:?}");
        admin.disconnect().await.unwrap();
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
}
