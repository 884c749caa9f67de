//! The daemon: `isymphony-sync --config F` with no mode flag.
//!
//! Wiring: load the configuration; start the agent resources (on `[server] agent_listen`,
//! 127.0.0.1:58081 by default) and, when `[server] enabled`, the embedded endpoint
//! (the agent resources share its listener unless `agent_listen` is set); send READY=1; then feed triggers (database fingerprint, file
//! watches, the periodic verify, `POST …/sync`, leadership gained) into the
//! [`scheduler`](super::run::scheduler), whose pass ([`pass`](super::run::pass)) runs only while this
//! agent is the [`leader`](super::leader::election), with the lock confirmed before each write stage.
//! Each pass logs one line and sends STATUS=. SIGHUP or a change of the config file re-reads
//! it: a valid one replaces the running one (restarting only the parts whose settings
//! changed), an invalid one is logged and ignored; the next pass has the trigger `reload`.
//! SIGTERM/SIGINT stop the triggers, let a running pass finish within a grace, then ask it to
//! stop (it logs what it applied; passes are crash-safe), release the lock and exit 0 within
//! 10 s. Every task the daemon starts is one of its [`Tasks`](super::tasks), stopped by the one
//! shutdown signal and joined; the last log line counts the tasks still alive (none).

use super::db_workers::DbWorkers;
use super::http::agent_api::{self as api, AgentApi, HolderFuture, PlanError, PlanFuture};
use super::http::endpoint::{effective, start_endpoint, start_on, Endpoint, Sockets};
use super::leader::election::{LockLink, Role};
use super::notify::{self, Notifier};
use super::reload;
use super::run::executor::PassExecutor;
use super::run::pass::{PassRunner, PASS_GRACE, STOP_WAIT};
use super::run::scheduler::{
    self, Next, PassRequest, SchedulerMsg, SchedulerView, Timing, TriggerSender, TriggerSource,
};
use super::state::AgentState;
use super::tasks::{Phase, Tasks};
use super::trigger::changes as fwatch;
use super::trigger::wipecheck;
use crate::config::Config;
use crate::reconcile::PassOptions;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Upper bound on the endpoint's graceful stop.
const SERVER_STOP: Duration = Duration::from_secs(3);
/// Upper bound on the stop of the election (releasing the lock) and its companions.
const LOCK_STOP: Duration = Duration::from_secs(2);
/// Shutdown ends within this time of the signal (systemd's stop timeout is longer).
const STOP_WITHIN: Duration = Duration::from_millis(9500);

/// Why the configuration is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReloadCause {
    Sighup,
    ConfigFileChanged,
}

impl ReloadCause {
    /// SIGHUP re-applies an unchanged file; a watch event for one (touch, chmod) is no reload.
    fn forced(self) -> bool {
        self == ReloadCause::Sighup
    }
    /// The words in the log line.
    fn as_str(self) -> &'static str {
        match self {
            ReloadCause::Sighup => "SIGHUP",
            ReloadCause::ConfigFileChanged => "config file changed",
        }
    }
}

/// Control messages to the daemon's main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Reload(ReloadCause),
    /// freepbx.conf or amportal.conf changed: the database credentials may have.
    FreepbxConfChanged,
}

/// What a burst of control messages asks for, each at most once.
#[derive(Debug, Default, PartialEq, Eq)]
struct Controls {
    reload: Option<ReloadCause>,
    restart_db: bool,
}

impl Controls {
    fn collect(msgs: impl IntoIterator<Item = Control>) -> Controls {
        let mut c = Controls::default();
        for m in msgs {
            match m {
                Control::Reload(why) => c.reload = Some(why),
                Control::FreepbxConfChanged => c.restart_db = true,
            }
        }
        c
    }
}

/// The agent resources' view of the running daemon.
struct DaemonApi {
    state: Arc<AgentState>,
    exec: PassExecutor,
    triggers: TriggerSender,
    cfg: watch::Receiver<Arc<Config>>,
    view: Arc<Mutex<SchedulerView>>,
    /// Shutdown ends a plan being computed for the page (its dry-run pass is dropped).
    stop: CancellationToken,
}

impl DaemonApi {
    fn refresh(&self) {
        let view = match self.view.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let to_sys = |i: Option<tokio::time::Instant>| {
            i.map(|i| {
                let now = tokio::time::Instant::now();
                if i >= now {
                    SystemTime::now() + (i - now)
                } else {
                    SystemTime::now() - (now - i)
                }
            })
        };
        self.state.set_schedule(
            view.running,
            view.pending,
            to_sys(view.next_verify),
            to_sys(view.retry_at),
        );
    }
}

impl AgentApi for DaemonApi {
    fn state(&self) -> &AgentState {
        self.refresh();
        &self.state
    }
    fn trigger_sync(&self, full: bool) {
        self.triggers.trigger(TriggerSource::Api, full);
    }
    fn plan(&self) -> PlanFuture<'_> {
        let cfg = self.cfg.borrow().clone();
        let (exec, stop) = (self.exec.clone(), self.stop.clone());
        Box::pin(async move {
            let opts = PassOptions {
                dry_run: true,
                // The plan shows them; the passes log them (once per change).
                quiet_gaps: true,
                keep_open: true,
                ..PassOptions::default()
            };
            let run = tokio::select! {
                r = exec.run(cfg, opts, None) => r,
                _ = stop.cancelled() => None,
            };
            match run {
                // The plan of a pass the safety valve would stop is refused, as it always was.
                Some(Ok(report)) => match report.valve_refusal() {
                    Some(e) => Err(Arc::new(e) as PlanError),
                    None => Ok(report.to_json()),
                },
                Some(Err(e)) => Err(Arc::new(e) as PlanError),
                None => Err(PlanError::from(
                    Box::<dyn std::error::Error + Send + Sync>::from("the agent is shutting down"),
                )),
            }
        })
    }
    fn explain(&self, obj: crate::explain::ObjectRef) -> api::ExplainFuture<'_> {
        api::explain_with(self.cfg.borrow().clone(), self.stop.clone(), obj)
    }
    fn keys(&self, kind: crate::model::Kind) -> api::KeysFuture<'_> {
        api::keys_with(self.cfg.borrow().clone(), self.stop.clone(), kind)
    }
    fn lock_holder(&self) -> HolderFuture<'_> {
        let cfg = self.cfg.borrow().clone();
        let lock = self.state.status().lock;
        Box::pin(async move {
            let Some(lock) = lock.filter(|_| cfg.freepbx.snapshot.is_none()) else {
                return Ok(None);
            };
            let opts = crate::freepbx::connect_opts(&cfg)?;
            Ok(super::leader::holder::holder(opts, &lock).await?)
        })
    }
}

fn timing(cfg: &Config) -> Timing {
    Timing {
        debounce: cfg.sync.debounce,
        resync_interval: cfg.sync.resync_interval.max(Duration::from_secs(1)),
        backoff_min: Duration::from_secs(1).min(cfg.sync.retry_backoff_max),
        backoff_max: cfg.sync.retry_backoff_max,
        // The pass itself stops within PASS_GRACE + STOP_WAIT (pass.rs); this is the backstop.
        shutdown_grace: PASS_GRACE + STOP_WAIT + Duration::from_secs(1),
    }
}

/// The running daemon: what the main loop changes on reload, and what it stops on SIGTERM.
/// The scheduler (with its passes), the wipe check, the database workers, the role watch and
/// the watchdog are its `tasks`; they read the configuration from `cfg_tx`.
struct Daemon {
    config_path: PathBuf,
    history: reload::History,
    /// The configuration as read from the file (compared with the next one on reload).
    raw: Config,
    /// `raw` with the embedded endpoint's address applied: what passes use.
    cfg: Arc<Config>,
    cfg_tx: watch::Sender<Arc<Config>>,
    state: Arc<AgentState>,
    notifier: Option<Arc<Notifier>>,
    api: Arc<dyn AgentApi>,
    triggers: TriggerSender,
    role: Arc<watch::Sender<Role>>,
    link: Arc<LockLink>,
    endpoint: Option<Endpoint>,
    workers: Option<DbWorkers>,
    watched: Vec<PathBuf>,
    file_watch: Option<fwatch::FileWatcher>,
    ctl_tx: mpsc::UnboundedSender<Control>,
    tasks: Tasks,
}

/// Run the daemon until SIGTERM/SIGINT. Errors are startup failures (exit 1).
pub async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    super::memory::limit_arenas();
    let (mut daemon, inbox) = Daemon::start(config_path).await?;
    let why = daemon.serve(inbox).await;
    daemon.finish(why).await;
    Ok(())
}

/// Which database workers a new configuration restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DbRestart {
    None,
    /// Only the change poll's settings changed (`poll_interval`, the voicemail path): the
    /// election keeps its lock.
    Poll,
    /// The database, its credentials or the core server changed: poll and election.
    All,
}

impl DbRestart {
    fn between(old: &Config, new: &Config) -> DbRestart {
        let (a, b) = (&old.freepbx, &new.freepbx);
        let same_db = a.database_url == b.database_url
            && a.config_file == b.config_file
            && a.amportal_conf == b.amportal_conf
            && a.snapshot == b.snapshot
            && old.isymphony.core_server == new.isymphony.core_server;
        if !same_db {
            DbRestart::All
        } else if a != b {
            DbRestart::Poll
        } else {
            DbRestart::None
        }
    }
}

/// What the main loop waits for: signals (installed before READY=1, so that an early SIGTERM
/// is a clean stop) and control messages.
struct Inbox {
    ctl_rx: mpsc::UnboundedReceiver<Control>,
    sigterm: Signal,
    sigint: Signal,
    sighup: Signal,
}

impl Daemon {
    /// Load the configuration, start the listeners (READY=1 means "configuration loaded and
    /// endpoint listening"), the scheduler, the wipe check, the database workers and the file
    /// watch, and ask for the first pass.
    async fn start(config_path: PathBuf) -> anyhow::Result<(Daemon, Inbox)> {
        // First of all: a SIGTERM during startup (a slow database, a big first read) must be
        // kept for the main loop, not lost to a handler installed later or to the default.
        let sigterm = signal(SignalKind::terminate())?;
        let sigint = signal(SignalKind::interrupt())?;
        let sighup = signal(SignalKind::hangup())?;
        let text = std::fs::read_to_string(&config_path).unwrap_or_default();
        let raw = Config::load(&config_path)?;
        if let Some(why) = raw.server.start_refusal() {
            anyhow::bail!("{why}");
        }
        let state = Arc::new(AgentState::new());
        state.set_config(Some(config_path.display().to_string()));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel::<Control>();
        let (triggers, trig_rx) = scheduler::channel();
        let view = Arc::new(Mutex::new(SchedulerView::default()));
        let (cfg_tx, cfg_rx) = watch::channel(Arc::new(raw.clone()));
        let exec = PassExecutor::start()?;
        let tasks = Tasks::new();
        let api: Arc<dyn AgentApi> = Arc::new(DaemonApi {
            state: state.clone(),
            exec: exec.clone(),
            triggers: triggers.clone(),
            cfg: cfg_rx.clone(),
            view: view.clone(),
            stop: tasks.token(Phase::Work),
        });
        let endpoint = start_endpoint(&raw, api.clone(), state.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the embedded endpoint: {e}"))?;
        let cfg = Arc::new(effective(raw.clone(), Some(&endpoint)));
        cfg_tx.send_replace(cfg.clone());
        let mut d = Daemon {
            watched: fwatch::watched_files(&cfg, &config_path),
            config_path,
            history: reload::History::new(text),
            raw,
            cfg,
            cfg_tx,
            state,
            notifier: Notifier::from_env().map(Arc::new),
            api,
            triggers,
            role: Arc::new(watch::channel(Role::Standby).0),
            link: LockLink::new(),
            endpoint: Some(endpoint),
            workers: None,
            file_watch: None,
            ctl_tx,
            tasks,
        };
        d.spawn_role_watch();
        let last_target = wipecheck::SharedTarget::default();
        d.spawn_scheduler(trig_rx, exec, view.clone(), last_target.clone());
        d.spawn_wipecheck(view, last_target);
        d.restart_db_workers().await;
        d.file_watch = d.start_file_watch();
        let inbox = Inbox {
            ctl_rx,
            sigterm,
            sigint,
            sighup,
        };
        d.spawn_watchdog();
        d.triggers.trigger(TriggerSource::Startup, true);
        if let Some(n) = &d.notifier {
            let _ = n.ready("started; waiting for the first pass");
        }
        tracing::info!(config = %d.config_path.display(), "isymphony-sync agent started");
        Ok((d, inbox))
    }

    /// Role changes: status, metrics, and a full pass on becoming leader. It reports the
    /// role until the election has stopped ([`Phase::Lock`]).
    fn spawn_role_watch(&self) {
        let mut role_rx = self.role.subscribe();
        let state = self.state.clone();
        let trig = self.triggers.clone();
        let stop = self.tasks.token(Phase::Lock);
        self.tasks.spawn("role watch", Phase::Lock, async move {
            loop {
                tokio::select! {
                    r = role_rx.changed() => if r.is_err() { break },
                    _ = stop.cancelled() => break,
                }
                let r = *role_rx.borrow();
                let lock = state.status().lock;
                state.set_role(r, lock);
                if r == Role::Leader {
                    trig.trigger(TriggerSource::Leadership, true);
                }
            }
        });
    }

    /// The scheduler, whose pass runs under the leader's gate and gives memory back after.
    fn spawn_scheduler(
        &mut self,
        trig_rx: mpsc::UnboundedReceiver<SchedulerMsg>,
        exec: PassExecutor,
        view: Arc<Mutex<SchedulerView>>,
        last_target: wipecheck::SharedTarget,
    ) {
        let runner = PassRunner {
            state: self.state.clone(),
            exec,
            notifier: self.notifier.clone(),
            link: self.link.clone(),
            role: self.role.subscribe(),
            shutdown: self.tasks.shutdown_signal(Phase::Work),
            last_target,
            known_gaps: Default::default(),
        };
        let cfg_rx = self.cfg_tx.subscribe();
        let pass =
            move |req: PassRequest| pass_then_release(runner.clone(), cfg_rx.borrow().clone(), req);
        let run = scheduler::run(
            trig_rx,
            timing(&self.cfg),
            self.tasks.token(Phase::Work),
            view,
            pass,
        );
        self.tasks.spawn("scheduler", Phase::Work, run);
    }

    /// The quick check for a wiped or reinstalled iSymphony.
    fn spawn_wipecheck(&self, view: Arc<Mutex<SchedulerView>>, last: wipecheck::SharedTarget) {
        let check = wipecheck::CheckLoop {
            cfg: self.cfg_tx.subscribe(),
            role: self.role.subscribe(),
            view,
            state: self.state.clone(),
            triggers: self.triggers.clone(),
            last,
            stop: self.tasks.token(Phase::Work),
        };
        self.tasks
            .spawn("iSymphony check", Phase::Work, check.run());
    }

    /// Watchdog pings from the runtime: a wedged runtime stops them and systemd restarts us.
    fn spawn_watchdog(&self) {
        if let (Some(n), Some(every)) = (self.notifier.clone(), notify::watchdog_interval()) {
            let stop = self.tasks.token(Phase::Lock);
            self.tasks.spawn("watchdog", Phase::Lock, async move {
                let mut t = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = t.tick() => {}
                        _ = stop.cancelled() => break,
                    }
                    let _ = n.watchdog();
                }
            });
        }
    }

    /// Handle signals and control messages until SIGTERM or SIGINT; returns why it stops.
    async fn serve(&mut self, inbox: Inbox) -> String {
        let Inbox {
            mut ctl_rx,
            mut sigterm,
            mut sigint,
            mut sighup,
        } = inbox;
        loop {
            let name = tokio::select! {
                _ = sigterm.recv() => "SIGTERM",
                _ = sigint.recv() => "SIGINT",
                _ = sighup.recv() => {
                    let _ = self.ctl_tx.send(Control::Reload(ReloadCause::Sighup));
                    continue;
                }
                Some(msg) = ctl_rx.recv() => {
                    // Editors produce bursts of events: let the burst settle, then act once.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let rest = std::iter::from_fn(|| ctl_rx.try_recv().ok());
                    let controls = Controls::collect(std::iter::once(msg).chain(rest));
                    self.handle(controls).await;
                    continue;
                }
            };
            tracing::info!("{name}: shutting down");
            return format!("the agent is shutting down ({name})");
        }
    }

    /// Act once on a burst of control messages.
    async fn handle(&mut self, c: Controls) {
        let mut restart = if c.restart_db {
            DbRestart::All
        } else {
            DbRestart::None
        };
        if let Some(why) = c.reload {
            restart = restart.max(self.reload(why).await);
        }
        if restart == DbRestart::Poll {
            if let Some(w) = self.workers.as_mut() {
                w.restart_poll(self.cfg.clone(), self.state.clone(), self.triggers.clone())
                    .await;
            }
        }
        if restart == DbRestart::All {
            self.restart_db_workers().await;
            // A changed FreePBX config file is a FreePBX-side change (it counts for the
            // change-to-converged latency); a reload of our own file is not one.
            let source = if c.restart_db {
                TriggerSource::File
            } else {
                TriggerSource::Reload
            };
            self.triggers.trigger(source, false);
        }
    }

    /// Read the configuration file again; a valid one replaces the running one, restarting
    /// only the parts whose settings changed (compared as values, so a comment or a
    /// reformatted line restarts nothing). A half-written file is never applied (see
    /// [`reload`]). Returns which database workers must restart.
    async fn reload(&mut self, why: ReloadCause) -> DbRestart {
        let previous;
        let new_raw = match reload::examine(&self.config_path, &self.history, why.forced()).await {
            reload::ReloadDecision::Unchanged => return DbRestart::None,
            reload::ReloadDecision::Rejected { error: e, text } => {
                tracing::error!(error = %e, "configuration reload ({}) rejected; keeping the running configuration", why.as_str());
                self.state.reload_failed(e.to_string());
                self.history.rejected = Some(text);
                return DbRestart::None;
            }
            reload::ReloadDecision::Apply { text, config } => {
                self.history.rejected = None;
                previous = std::mem::replace(&mut self.history.loaded, text);
                *config
            }
        };
        let server_changed = new_raw.server != self.raw.server;
        let db_restart = DbRestart::between(&self.raw, &new_raw);
        if server_changed {
            if let Err(e) = self.restart_endpoint(&new_raw).await {
                tracing::error!(
                    error = %e,
                    "configuration reload ({}) failed: the endpoint cannot listen as the new \
                     [server] says; the running configuration and its listeners stay",
                    why.as_str()
                );
                self.state.reload_failed(e.to_string());
                // The file's text is a rejected one now: the next change (or SIGHUP) retries.
                let text = std::mem::replace(&mut self.history.loaded, previous);
                self.history.rejected = Some(Some(text));
                return DbRestart::None;
            }
        }
        self.raw = new_raw;
        self.cfg = Arc::new(effective(self.raw.clone(), self.endpoint.as_ref()));
        self.cfg_tx.send_replace(self.cfg.clone());
        self.triggers
            .send(SchedulerMsg::Configure(timing(&self.cfg)));
        let watched = fwatch::watched_files(&self.cfg, &self.config_path);
        if watched != self.watched {
            self.watched = watched;
            self.file_watch = self.start_file_watch();
        }
        self.state
            .set_config(Some(self.config_path.display().to_string()));
        tracing::info!(
            trigger = why.as_str(),
            server_restarted = server_changed,
            "configuration reloaded"
        );
        self.triggers.trigger(TriggerSource::Reload, false);
        db_restart
    }

    /// Start the listeners with `raw`'s `[server]` without ever leaving a port free (issue 18
    /// point 9): the sockets of unchanged addresses are kept and new ones bound while the old
    /// listeners still serve; a bind that fails changes nothing (Err). If the new endpoint
    /// cannot start on its sockets (its store, its certificate), the running configuration's
    /// endpoint is started again on the kept sockets, and the error returned.
    async fn restart_endpoint(&mut self, raw: &Config) -> Result<(), crate::server::ServerError> {
        let kept = self.endpoint.as_ref().map(Endpoint::sockets);
        let sockets = Sockets::prepare(raw, kept)?;
        let fallback = kept.map(Sockets::dup);
        if let Some(ep) = self.endpoint.take() {
            let _ = tokio::time::timeout(SERVER_STOP, ep.shutdown()).await;
        }
        let e = match start_on(raw, self.api.clone(), self.state.clone(), sockets).await {
            Ok(ep) => {
                self.endpoint = Some(ep);
                return Ok(());
            }
            Err(e) => e,
        };
        if let Some(old) = fallback {
            match start_on(&self.raw, self.api.clone(), self.state.clone(), old).await {
                Ok(ep) => self.endpoint = Some(ep),
                Err(e2) => tracing::error!(
                    error = %e2,
                    "the endpoint could not start again with the running configuration either"
                ),
            }
        }
        Err(e)
    }

    /// Stop the database poll and the election, and start them with the current settings.
    async fn restart_db_workers(&mut self) {
        if let Some(w) = self.workers.take() {
            w.stop().await;
        }
        self.workers = Some(DbWorkers::start(
            &self.tasks,
            self.cfg.clone(),
            self.state.clone(),
            self.triggers.clone(),
            self.role.clone(),
            self.link.clone(),
        ));
    }

    /// Watch the files in `watched`: our config is a reload, FreePBX's config restarts the
    /// database workers, the others are a trigger.
    fn start_file_watch(&self) -> Option<fwatch::FileWatcher> {
        let ctl = self.ctl_tx.clone();
        let trig = self.triggers.clone();
        let config_path = self.config_path.clone();
        let fpbx_conf = self.cfg.freepbx.config_file.clone();
        let amportal = self.cfg.freepbx.amportal_conf.clone();
        let watched = fwatch::watch_files(&self.watched, move |p| {
            if p == config_path {
                let _ = ctl.send(Control::Reload(ReloadCause::ConfigFileChanged));
            } else if p == fpbx_conf || p == amportal {
                let _ = ctl.send(Control::FreepbxConfChanged);
            } else {
                tracing::debug!(file = %p.display(), "watched file changed");
                trig.trigger(TriggerSource::File, false);
            }
        });
        match watched {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; relying on the periodic verify");
                None
            }
        }
    }

    /// Shutdown: no more triggers; the scheduler finishes or drops its pass; then release the
    /// lock and stop the endpoint, bounded, so that the process exits within 10 s of the
    /// signal (an unreleased lock is freed when our connection closes).
    async fn finish(mut self, why: String) {
        let deadline = tokio::time::Instant::now() + STOP_WITHIN;
        if let Some(n) = &self.notifier {
            let _ = n.stopping("shutting down");
        }
        drop(self.file_watch.take());
        // The scheduler bounds its pass by the grace itself; the half second is for its return.
        let work_wait = timing(&self.cfg).shutdown_grace + Duration::from_millis(500);
        let late = self.tasks.shutdown(&why, work_wait, LOCK_STOP).await;
        // Their tasks have ended (or are named in `late`): nothing left to stop in them.
        drop(self.workers.take());
        // What the passes kept open (connections and their tasks) closes with them.
        crate::reconcile::release_kept();
        if let Some(ep) = self.endpoint.take() {
            let wait = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(SERVER_STOP);
            if tokio::time::timeout(wait, ep.shutdown()).await.is_err() {
                tracing::warn!("the endpoint did not stop in time; exiting anyway");
            }
        }
        // The runtime's own count covers tasks spawned outside `tasks` too (listeners,
        // connections, a plan computed for the page): a task alive here was never stopped.
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        tracing::info!(
            tasks_not_stopped = late.len(),
            runtime_tasks_alive = alive,
            "isymphony-sync agent stopped"
        );
    }
}

/// One pass as the scheduler runs it; afterwards the memory its snapshot held goes back.
async fn pass_then_release(runner: PassRunner, cfg: Arc<Config>, req: PassRequest) -> Next {
    let r = runner.run(cfg, req).await;
    super::memory::release();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_controls_acts_once() {
        let c = Controls::collect([
            Control::Reload(ReloadCause::ConfigFileChanged),
            Control::FreepbxConfChanged,
            Control::Reload(ReloadCause::Sighup),
        ]);
        assert_eq!(
            c,
            Controls {
                reload: Some(ReloadCause::Sighup),
                restart_db: true
            }
        );
        assert!(ReloadCause::Sighup.forced());
        assert!(!ReloadCause::ConfigFileChanged.forced());
        assert_eq!(Controls::collect([]), Controls::default());
    }
}
