//! Who holds the writer lock, for the status page: MariaDB knows the connection that holds a
//! named lock (`IS_USED_LOCK`) and its account and origin (`information_schema.PROCESSLIST`:
//! `USER`, `HOST`), so a standby can name the leader's host without any agent-to-agent
//! protocol, and tell when the lock is held by an account that is not the agents' login: any
//! MariaDB account can take it (issue 18 point 11). [`watch_lock`] keeps that on the status
//! document and in the metrics while this agent waits.

use super::election::Role;
use crate::agent::state::status::LockCheck;
use crate::agent::state::AgentState;
use mysql_async::prelude::Queryable;
use mysql_async::Opts;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The connection that holds the writer lock, as MariaDB tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) connection: u64,
    /// The MariaDB account's user name (None: not visible, the PROCESS privilege is missing).
    pub(crate) user: Option<String>,
    /// Where the connection comes from (`10.0.0.5:51234`, `localhost`).
    pub(crate) host: Option<String>,
}

impl Holder {
    /// Is the holder another MariaDB account than `login` (the agent's own)? None when the
    /// holder's user cannot be seen.
    pub(crate) fn foreign(&self, login: &str) -> Option<bool> {
        self.user.as_deref().map(|u| u != login)
    }

    /// `MariaDB connection 42 of user 'isy' from 10.0.0.5:51234`, and whether that is the
    /// agent's login (`login`).
    pub(crate) fn phrase(&self, login: Option<&str>) -> String {
        let mut s = format!("MariaDB connection {}", self.connection);
        match &self.user {
            Some(u) => s.push_str(&format!(" of user '{}'", crate::text::escape_control(u))),
            None => s.push_str(" (its user is not visible without the PROCESS privilege)"),
        }
        if let Some(h) = &self.host {
            s.push_str(&format!(" from {}", crate::text::escape_control(h)));
        }
        match login.and_then(|l| self.foreign(l).map(|f| (l, f))) {
            Some((_, false)) => s.push_str(", the agents' login"),
            Some((l, true)) => s.push_str(&format!(
                ", NOT the agents' login '{}'",
                crate::text::escape_control(l)
            )),
            None => {}
        }
        s
    }
}

/// The holder of `lock`, or None when nobody holds it. One short connection; errors are the
/// database's, for the page.
pub(crate) async fn holder_of(
    opts: Opts,
    lock: &str,
) -> Result<Option<Holder>, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts).await?;
    let id: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (lock,)).await?;
    let holder = match id.flatten() {
        None => None,
        Some(connection) => {
            // Seeing other sessions needs the PROCESS privilege; without it, the id only.
            let row: Option<(Option<String>, Option<String>)> = conn
                .exec_first(
                    "SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = ?",
                    (connection,),
                )
                .await
                .unwrap_or(None);
            let (user, host) = row.unwrap_or((None, None));
            Some(Holder {
                connection,
                user,
                host,
            })
        }
    };
    let _ = conn.disconnect().await;
    Ok(holder)
}

/// The holder of `lock` as a phrase naming its MariaDB user and host (see
/// [`Holder::phrase`]), or None when nobody holds it.
pub(crate) async fn holder(opts: Opts, lock: &str) -> Result<Option<String>, mysql_async::Error> {
    let login = opts.user().map(str::to_string);
    let h = holder_of(opts, lock).await?;
    Ok(h.map(|h| h.phrase(login.as_deref())))
}

/// The verdict on one look at the holder: `login` is the agents' MariaDB user, `waited` how
/// long this agent has been standby.
pub(crate) fn judge(
    lock: &str,
    h: Option<&Holder>,
    login: Option<&str>,
    waited: Duration,
    warn_after: Duration,
) -> LockCheck {
    let holder = h.map(|h| h.phrase(login));
    let foreign_holder = h.zip(login).and_then(|(h, l)| h.foreign(l)) == Some(true);
    let standby_too_long = !warn_after.is_zero() && waited > warn_after;
    let mut warnings = Vec::new();
    if let (true, Some(h), Some(p)) = (foreign_holder, h, &holder) {
        warnings.push(format!(
            "the writer lock {lock} is held by {p}: an account that is not the agents' login \
             holds it, so no agent writes while it does (SHOW PROCESSLIST shows connection {})",
            h.connection
        ));
    }
    if standby_too_long {
        warnings.push(format!(
            "standby for {} s, over [sync] standby_warn_after ({} s): the writer lock {lock} is \
             held by {}",
            waited.as_secs(),
            warn_after.as_secs(),
            holder.as_deref().unwrap_or("nobody at the moment")
        ));
    }
    LockCheck {
        holder,
        foreign_holder,
        standby_too_long,
        warnings,
    }
}

/// While this agent is standby, ask MariaDB who holds `lock` (every quarter of `warn_after`,
/// between 0.5 s and 10 s) and keep the status document told; new warnings are logged once.
pub(crate) async fn watch_lock(
    opts: Opts,
    lock: String,
    warn_after: Duration,
    role: watch::Receiver<Role>,
    state: Arc<AgentState>,
    stop: CancellationToken,
) {
    let every = if warn_after.is_zero() {
        Duration::from_secs(10)
    } else {
        (warn_after / 4).clamp(Duration::from_millis(500), Duration::from_secs(10))
    };
    let login = opts.user().map(str::to_string);
    let mut since = Instant::now();
    let mut last = LockCheck::default();
    loop {
        let check = if *role.borrow() == Role::Leader {
            since = Instant::now();
            LockCheck::default()
        } else {
            match holder_of(opts.clone(), &lock).await {
                Ok(h) => judge(
                    &lock,
                    h.as_ref(),
                    login.as_deref(),
                    since.elapsed(),
                    warn_after,
                ),
                Err(e) => {
                    tracing::debug!(error = %e, "who holds the writer lock: no answer");
                    last.clone()
                }
            }
        };
        for w in check.warnings.iter().filter(|w| !last.warnings.contains(w)) {
            tracing::warn!("{w}");
        }
        state.set_lock_check(check.clone());
        last = check;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => break,
        }
    }
    state.set_lock_check(LockCheck::default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testdb::TestDb;

    #[tokio::test]
    async fn names_the_connection_that_holds_the_lock() {
        let db = TestDb::new("lockinfo").await;
        let lock = format!("isymphony-sync-test:{}", db.name);
        assert_eq!(holder(db.opts(), &lock).await.unwrap(), None);
        let mut other = mysql_async::Conn::new(db.opts()).await.unwrap();
        let got: Option<i64> = other
            .exec_first("SELECT GET_LOCK(?, 0)", (lock.as_str(),))
            .await
            .unwrap();
        assert_eq!(got, Some(1));
        let id: Option<u64> = other
            .exec_first("SELECT CONNECTION_ID()", ())
            .await
            .unwrap();
        let h = holder(db.opts(), &lock).await.unwrap().unwrap();
        assert!(
            h.starts_with(&format!("MariaDB connection {} of user '", id.unwrap())),
            "{h}"
        );
        assert!(
            h.contains(" from ") && h.ends_with(", the agents' login"),
            "{h}"
        );
        other.disconnect().await.unwrap();
        // Released with the connection.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(holder(db.opts(), &lock).await.unwrap(), None);
    }
}
