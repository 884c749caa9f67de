//! The tasks bound to one database configuration: the change poll (a changed fingerprint is
//! a trigger) and the leader election. The daemon restarts both when `[freepbx]` or the core
//! server changes.

use super::leader::election::{self as leader, ElectionTiming, LockLink, Role};
use super::run::scheduler::{TriggerSender, TriggerSource};
use super::state::AgentState;
use super::trigger::changes::{self as fwatch, ChangeDetector, Poll};
use crate::config::Config;
use mysql_async::Opts;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest wait between database polls while the database is down.
const POLL_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The core server slug for the lock name ([`crate::model::core_server_slug`]); the cxpanel
/// settings are read only when the TOML names none.
async fn core_server_slug(cfg: &Config, opts: &Opts) -> Result<String, mysql_async::Error> {
    let configured = cfg.isymphony.core_server.as_deref();
    let cxpanel = match configured {
        Some(s) if !s.is_empty() => None,
        _ => crate::freepbx::read_cx_core_server(opts.clone()).await?,
    };
    Ok(crate::model::core_server_slug(
        configured,
        cxpanel.as_deref(),
    ))
}

/// One task with its own stop signal.
struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn<F, Fut>(f: F) -> Task
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        Task {
            stop,
            handle: tokio::spawn(f(rx)),
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// Tasks bound to one database configuration: the change poll and the leader election,
/// restarted separately, so that a new poll interval does not give up leadership.
pub(super) struct DbWorkers {
    poll: Option<Task>,
    election: Option<Task>,
}

impl DbWorkers {
    pub(super) fn start(
        cfg: Arc<Config>,
        state: Arc<AgentState>,
        triggers: TriggerSender,
        role: Arc<watch::Sender<Role>>,
        link: Arc<LockLink>,
    ) -> DbWorkers {
        if cfg.freepbx.snapshot.is_some() {
            // A snapshot file is the source: no database to poll or lock; this agent writes.
            role.send_replace(Role::Leader);
            state.set_freepbx(true, None);
            return DbWorkers {
                poll: None,
                election: None,
            };
        }
        let poll = Task::spawn({
            let (cfg, state) = (cfg.clone(), state.clone());
            move |stop| poll_loop(cfg, state, triggers, stop)
        });
        let election = Task::spawn(move |stop| election_loop(cfg, state, role, link, stop));
        DbWorkers {
            poll: Some(poll),
            election: Some(election),
        }
    }

    /// Restart the change poll alone (only its settings changed); the election goes on.
    pub(super) async fn restart_poll(
        &mut self,
        cfg: Arc<Config>,
        state: Arc<AgentState>,
        triggers: TriggerSender,
    ) {
        let Some(old) = self.poll.take() else {
            return;
        };
        old.stop().await;
        self.poll = Some(Task::spawn(move |stop| {
            poll_loop(cfg, state, triggers, stop)
        }));
    }

    pub(super) async fn stop(self) {
        for t in [self.poll, self.election].into_iter().flatten() {
            t.stop().await;
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

/// Poll the database fingerprint every `poll_interval`; a change is a trigger.
async fn poll_loop(
    cfg: Arc<Config>,
    state: Arc<AgentState>,
    triggers: TriggerSender,
    mut stop: watch::Receiver<bool>,
) {
    let interval = cfg.freepbx.poll_interval.max(Duration::from_millis(10));
    let mut backoff: Option<Duration> = None;
    let mut detector: Option<(ChangeDetector, crate::freepbx::DbTarget)> = None;
    let mut was_down = false;
    loop {
        if *stop.borrow() {
            break;
        }
        if detector.is_none() {
            let resolved = crate::freepbx::resolve_target(&cfg)
                .and_then(|t| Ok((crate::freepbx::connect_opts(&cfg)?, t)));
            match resolved {
                Ok((opts, target)) => detector = Some((ChangeDetector::new(opts), target)),
                Err(e) => {
                    state.set_freepbx(false, Some(e.to_string()));
                    state.db_polled(false);
                    if !was_down {
                        tracing::warn!(error = %e, "FreePBX database settings unreadable; retrying");
                    }
                    was_down = true;
                }
            }
        }
        if let Some((d, target)) = detector.as_mut() {
            let before = d.counts;
            let polled = d.poll().await;
            let c = d.counts;
            state.db_detection(
                c.stamp_queries - before.stamp_queries,
                c.checksums_run - before.checksums_run,
                c.tables_checksummed - before.tables_checksummed,
            );
            match polled {
                Ok(p) => {
                    state.db_polled(true);
                    state.set_freepbx(true, None);
                    backoff = None;
                    if was_down {
                        tracing::info!("FreePBX database reachable again");
                        was_down = false;
                        triggers.trigger(TriggerSource::Database, false);
                    } else if p == Poll::Changed {
                        tracing::debug!("FreePBX database changed");
                        triggers.trigger(TriggerSource::Database, false);
                    }
                }
                Err(e) => {
                    state.db_polled(false);
                    // The same words as a pass ("refused the login … (wrong user or
                    // password?)", "cannot reach …"), not the driver's.
                    let msg = crate::freepbx::db_error(target, e).to_string();
                    state.set_freepbx(false, Some(msg.clone()));
                    if !was_down {
                        tracing::warn!(error = %msg, "FreePBX database poll failed; retrying with backoff");
                    }
                    was_down = true;
                    // Credentials may have changed: resolve them again next time.
                    detector = None;
                }
            }
        }
        let wait = if was_down {
            let b = fwatch::next_poll_backoff(backoff, interval, POLL_BACKOFF_MAX.max(interval));
            backoff = Some(b);
            b
        } else {
            interval
        };
        if sleep_or_stop(wait, &mut stop).await {
            break;
        }
    }
    if let Some((mut d, _)) = detector {
        d.close().await;
    }
}

/// Keep competing for the writer lock until stopped.
async fn election_loop(
    cfg: Arc<Config>,
    state: Arc<AgentState>,
    role: Arc<watch::Sender<Role>>,
    link: Arc<LockLink>,
    mut stop: watch::Receiver<bool>,
) {
    // A standby's GET_LOCK attempt is a statement like any other (~0.35 ms of MariaDB CPU
    // when it comes alone): at most twice a second, at least once; takeover within a second.
    let retry = cfg
        .freepbx
        .poll_interval
        .clamp(Duration::from_millis(500), Duration::from_secs(1));
    loop {
        if *stop.borrow() {
            return;
        }
        let prepared = async {
            let opts = crate::freepbx::connect_opts(&cfg).map_err(|e| e.to_string())?;
            let slug = core_server_slug(&cfg, &opts)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((opts, slug))
        }
        .await;
        match prepared {
            Ok((opts, slug)) => {
                let name = leader::lock_name(&slug, opts.db_name().unwrap_or(""));
                state.set_role(*role.borrow(), Some(name.clone()));
                let timing = ElectionTiming {
                    retry_interval: retry,
                    ..ElectionTiming::default()
                };
                let watch = tokio::spawn(super::leader::holder::watch_lock(
                    opts.clone(),
                    name.clone(),
                    cfg.sync.standby_warn_after,
                    role.subscribe(),
                    state.clone(),
                    stop.clone(),
                ));
                let (tx, mut rx) = watch::channel(Role::Standby);
                let fwd_role = role.clone();
                let fwd = tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        let r = *rx.borrow();
                        fwd_role.send_replace(r);
                    }
                });
                leader::run(opts, name, timing, tx, link.clone(), stop.clone()).await;
                let _ = fwd.await;
                watch.abort();
                role.send_replace(Role::Standby);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "leader election cannot start yet");
                if sleep_or_stop(retry * 2, &mut stop).await {
                    return;
                }
            }
        }
    }
}
