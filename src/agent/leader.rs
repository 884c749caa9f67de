//! One writer among several agents: a MariaDB `GET_LOCK` on a dedicated connection.
//!
//! Agents pointed at the same FreePBX database and core server (an HA pair, a second host)
//! compete for one named lock; the holder is the leader and the only one that writes. The
//! lock lives as long as the connection: when the leader dies (even by SIGKILL) the server
//! closes its connection and frees the lock, and a standby, which retries every
//! `retry_interval`, takes over. The leader pings its connection; if the ping fails or hangs
//! it considers leadership lost at once. The connection's `wait_timeout` is lowered so that a
//! leader host that vanishes without closing TCP loses the lock within about that time.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sha1::{Digest, Sha1};
use std::time::Duration;
use tokio::sync::watch;

/// This agent's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
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
    let digest = Sha1::digest(name.as_bytes());
    format!("isymphony-sync:{}", hex::encode(&digest[..20]))
}

/// Timing of the election.
#[derive(Debug, Clone, Copy)]
pub struct ElectionTiming {
    /// How often a standby tries to take the lock, and how often a leader pings.
    pub retry_interval: Duration,
    /// A ping that takes longer than this means the connection is gone.
    pub ping_timeout: Duration,
    /// Server-side idle timeout of the lock connection (seconds).
    pub wait_timeout_secs: u32,
}

impl Default for ElectionTiming {
    fn default() -> Self {
        ElectionTiming {
            retry_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(5),
            wait_timeout_secs: 15,
        }
    }
}

/// Try to take the lock on `conn`: Ok(true) when held.
async fn try_lock(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let got: Option<Option<i64>> = conn.exec_first("SELECT GET_LOCK(?, 0)", (name,)).await?;
    Ok(matches!(got, Some(Some(1))))
}

/// Is the lock still held by this connection?
async fn still_held(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT IS_USED_LOCK(?) = CONNECTION_ID()", (name,))
        .await?;
    Ok(matches!(got, Some(Some(1))))
}

/// Run the election until `shutdown` turns true, publishing the role on `role`. On shutdown
/// the lock is released (so a standby takes over at once) and the connection closed.
pub async fn run(
    opts: Opts,
    name: String,
    timing: ElectionTiming,
    role: watch::Sender<Role>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conn: Option<Conn> = None;
    let mut last_error: Option<String> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let step = async {
            if conn.is_none() {
                let mut c = Conn::new(opts.clone()).await?;
                c.query_drop(format!(
                    "SET SESSION wait_timeout = {}",
                    timing.wait_timeout_secs.max(2)
                ))
                .await?;
                conn = Some(c);
            }
            let Some(c) = conn.as_mut() else {
                return Ok::<bool, mysql_async::Error>(false);
            };
            if *role.borrow() == Role::Leader {
                still_held(c, &name).await
            } else {
                try_lock(c, &name).await
            }
        };
        let outcome = tokio::time::timeout(timing.ping_timeout, step).await;
        let now_leader = match outcome {
            Ok(Ok(held)) => {
                last_error = None;
                held
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(&msg) {
                    tracing::warn!(error = %msg, "leader election: database connection failed");
                    last_error = Some(msg);
                }
                conn = None;
                false
            }
            Err(_) => {
                tracing::warn!("leader election: database did not answer in time");
                conn = None;
                false
            }
        };
        let was = *role.borrow();
        let now = if now_leader {
            Role::Leader
        } else {
            Role::Standby
        };
        if was != now {
            match now {
                Role::Leader => tracing::info!(lock = %name, "became leader"),
                Role::Standby => tracing::warn!(lock = %name, "lost leadership; now standby"),
            }
            role.send_replace(now);
        }
        tokio::select! {
            _ = tokio::time::sleep(timing.retry_interval) => {}
            r = shutdown.changed() => { if r.is_err() { break; } }
        }
    }
    if let Some(mut c) = conn.take() {
        if *role.borrow() == Role::Leader {
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

    fn fast() -> ElectionTiming {
        ElectionTiming {
            retry_interval: Duration::from_millis(100),
            ping_timeout: Duration::from_secs(5),
            wait_timeout_secs: 15,
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
        let (a_role, mut a_rx) = watch::channel(Role::Standby);
        let (a_stop, a_stop_rx) = watch::channel(false);
        let a = tokio::spawn(run(db.opts(), name.clone(), fast(), a_role, a_stop_rx));
        wait_for(&mut a_rx, Role::Leader).await;

        let (b_role, mut b_rx) = watch::channel(Role::Standby);
        let (b_stop, b_stop_rx) = watch::channel(false);
        let b = tokio::spawn(run(db.opts(), name.clone(), fast(), b_role, b_stop_rx));
        // B keeps trying but stays standby while A holds the lock.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(*b_rx.borrow(), Role::Standby);
        assert_eq!(*a_rx.borrow(), Role::Leader);

        a_stop.send(true).unwrap();
        a.await.unwrap();
        assert_eq!(*a_rx.borrow(), Role::Standby);
        wait_for(&mut b_rx, Role::Leader).await;

        b_stop.send(true).unwrap();
        b.await.unwrap();
        db.drop().await;
    }

    #[tokio::test]
    async fn leadership_is_lost_when_the_connection_is_killed() {
        let db = TestDb::new("leaderkill").await;
        let name = lock_name("default", &db.name);
        let (role, mut rx) = watch::channel(Role::Standby);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(db.opts(), name.clone(), fast(), role, stop_rx));
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
        stop.send(true).unwrap();
        task.await.unwrap();
        db.drop().await;
    }
}
