//! The tasks bound to one database configuration: the change detection (the binary-log
//! follower where it works, and the poll: a changed fingerprint is a trigger) and the leader
//! election. The daemon restarts both when `[freepbx]` or the core
//! server changes. Both are tasks of the daemon's [`Tasks`], each with a child token of its
//! phase, so that they stop on their own for a restart and with the daemon on shutdown.

use super::leader::election::{self as leader, ElectionTiming, LockLink, Role};
use super::run::scheduler::{TriggerSender, TriggerSource};
use super::state::AgentState;
use super::tasks::{Phase, Tasks};
use super::trigger::binlog::{self, Source, Wake};
use super::trigger::changes::{self as fwatch, ChangeDetector, Poll};
use crate::config::Config;
use mysql_async::Opts;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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

/// One task with its own stop token (a child of its phase's).
struct Task {
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl Task {
    fn spawn<F, Fut>(tasks: &Tasks, name: &'static str, phase: Phase, f: F) -> Task
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = tasks.child_token(phase);
        Task {
            handle: tasks.spawn(name, phase, f(stop.clone())),
            stop,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}

/// Tasks bound to one database configuration: the change poll and the leader election,
/// restarted separately, so that a new poll interval does not give up leadership.
pub(super) struct DbWorkers {
    tasks: Tasks,
    poll: Option<Task>,
    election: Option<Task>,
}

impl DbWorkers {
    /// The poll is a trigger (stopped with the scheduler); the election holds the writer lock,
    /// so it stops only after the pass has ([`Phase::Lock`]).
    pub(super) fn start(
        tasks: &Tasks,
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
                tasks: tasks.clone(),
                poll: None,
                election: None,
            };
        }
        let poll = Task::spawn(tasks, "database poll", Phase::Work, {
            let (cfg, state) = (cfg.clone(), state.clone());
            move |stop| detect_changes(cfg, state, triggers, stop)
        });
        let election = Task::spawn(tasks, "leader election", Phase::Lock, move |stop| {
            election_loop(cfg, state, role, link, stop)
        });
        DbWorkers {
            tasks: tasks.clone(),
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
        self.poll = Some(Task::spawn(
            &self.tasks,
            "database poll",
            Phase::Work,
            move |stop| detect_changes(cfg, state, triggers, stop),
        ));
    }

    pub(super) async fn stop(self) {
        for t in [self.poll, self.election].into_iter().flatten() {
            t.stop().await;
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

/// The binary-log follower and the poll, side by side; the follower tells the poll how often
/// to run.
async fn detect_changes(
    cfg: Arc<Config>,
    state: Arc<AgentState>,
    triggers: TriggerSender,
    stop: CancellationToken,
) {
    let (tx, rx) = watch::channel(Source::Poll);
    let follower = binlog::follow(
        cfg.clone(),
        state.clone(),
        triggers.clone(),
        tx,
        stop.clone(),
    );
    tokio::join!(follower, poll_loop(cfg, state, triggers, rx, stop));
}

/// Poll the database fingerprint every `poll_interval` (every [`binlog::SAFETY_POLL`] while
/// the binary log is followed); a change is a trigger.
async fn poll_loop(
    cfg: Arc<Config>,
    state: Arc<AgentState>,
    triggers: TriggerSender,
    mut source: watch::Receiver<Source>,
    stop: CancellationToken,
) {
    let interval = cfg.freepbx.poll_interval.max(Duration::from_millis(10));
    let mut backoff: Option<Duration> = None;
    let mut detector: Option<(ChangeDetector, crate::freepbx::DbTarget)> = None;
    let mut was_down = false;
    loop {
        if stop.is_cancelled() {
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
            binlog::poll_every(*source.borrow(), interval)
        };
        match binlog::wait(wait, &stop, &mut source).await {
            Wake::Stop => break,
            Wake::Timer | Wake::Source(Source::Binlog) => {}
            // The stream broke: everything it may not have delivered is suspect.
            Wake::Source(Source::Poll) => {
                if let Some((d, _)) = detector.as_mut() {
                    d.suspect_all();
                }
            }
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
    stop: CancellationToken,
) {
    // A standby's GET_LOCK attempt is a statement like any other (~0.35 ms of MariaDB CPU
    // when it comes alone): at most twice a second, at least once; takeover within a second.
    let retry = cfg
        .freepbx
        .poll_interval
        .clamp(Duration::from_millis(500), Duration::from_secs(1));
    loop {
        if stop.is_cancelled() {
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
                // The election, the forwarding of its role and the check of who holds the
                // lock run within this task, so stopping it stops all three.
                let watch_stop = stop.child_token();
                let watch = super::leader::holder::watch_lock(
                    opts.clone(),
                    name.clone(),
                    cfg.sync.standby_warn_after,
                    role.subscribe(),
                    state.clone(),
                    watch_stop.clone(),
                );
                let (tx, mut rx) = watch::channel(Role::Standby);
                // Ends when the election drops `tx`, that is when it has returned.
                let forward = async {
                    while rx.changed().await.is_ok() {
                        let r = *rx.borrow();
                        role.send_replace(r);
                    }
                };
                let elect = async {
                    leader::run(opts, name, timing, tx, link.clone(), stop.clone()).await;
                    watch_stop.cancel();
                };
                tokio::join!(elect, forward, watch);
                role.send_replace(Role::Standby);
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "leader election cannot start yet");
                if sleep_or_stop(retry * 2, &stop).await {
                    return;
                }
            }
        }
    }
}
