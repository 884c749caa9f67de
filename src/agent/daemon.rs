//! The daemon: `isymphony-sync --config F` with no mode flag.
//!
//! Wiring: load the configuration; start the agent resources (on `[server] agent_listen`,
//! 127.0.0.1:58081 by default) and, when `[server] enabled`, the Configuration API imitation
//! (the agent resources share its listener unless `agent_listen` is set); send READY=1; then feed triggers (database fingerprint, file
//! watches, the periodic verify, `POST …/sync`, leadership gained) into the
//! [`scheduler`](super::scheduler), whose pass ([`pass`](super::pass)) runs only while this
//! agent is the [`leader`](super::leader), with the lock confirmed before each write stage.
//! Each pass logs one line and sends STATUS=. SIGHUP or a change of the config file re-reads
//! it: a valid one replaces the running one (restarting only the parts whose settings
//! changed), an invalid one is logged and ignored; the next pass has the trigger `reload`.
//! SIGTERM/SIGINT stop the triggers, let a running pass finish within a grace, then ask it to
//! stop (it logs what it applied; passes are crash-safe), release the lock and exit 0 within
//! 10 s.

use super::endpoint::{effective, start_endpoint};
use super::executor::PassExecutor;
use super::leader::{self, ElectionTiming, LockLink, Role};
use super::notify::{self, Notifier};
use super::pass::{PassRunner, PASS_GRACE, STOP_WAIT};
use super::plan_share::PlanError;
use super::reload;
use super::resources::{AgentApi, HolderFuture, PlanFuture};
use super::scheduler::{
    self, PassRequest, SchedulerMsg, SchedulerView, Timing, TriggerSender, TriggerSource,
};
use super::status::AgentState;
use super::watch::{self as fwatch, ChangeDetector, Poll};
use super::wipecheck;
use crate::config::Config;
use crate::reconcile::{self, PassOptions};
use mysql_async::prelude::Queryable;
use mysql_async::Opts;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Upper bound on the endpoint's graceful stop.
const SERVER_STOP: Duration = Duration::from_secs(3);
/// Longest wait between database polls while the database is down.
const POLL_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Control messages to the daemon's main loop.
#[derive(Debug)]
enum Control {
    Reload(&'static str),
    FreepbxConfChanged,
}

/// The agent resources' view of the running daemon.
struct DaemonApi {
    state: Arc<AgentState>,
    exec: PassExecutor,
    triggers: TriggerSender,
    cfg: watch::Receiver<Arc<Config>>,
    view: Arc<Mutex<SchedulerView>>,
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
        let exec = self.exec.clone();
        Box::pin(async move {
            let opts = PassOptions {
                dry_run: true,
                ..PassOptions::default()
            };
            match exec.run(cfg, opts, None).await {
                Some(Ok(report)) => Ok(report.to_json()),
                Some(Err(e)) => Err(Arc::new(e) as PlanError),
                None => Err(PlanError::from(
                    Box::<dyn std::error::Error + Send + Sync>::from("the agent is shutting down"),
                )),
            }
        })
    }
    fn lock_holder(&self) -> HolderFuture<'_> {
        let cfg = self.cfg.borrow().clone();
        let lock = self.state.status().lock;
        Box::pin(async move {
            let Some(lock) = lock.filter(|_| cfg.freepbx.snapshot.is_none()) else {
                return Ok(None);
            };
            let opts = crate::freepbx::connect_opts(&cfg)?;
            Ok(super::lockinfo::holder(opts, &lock).await?)
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

/// The files whose change matters: FreePBX's config (credentials), voicemail.conf (e-mail
/// addresses), a snapshot file when one is the source, and our own config.
fn watched_files(cfg: &Config, config_path: &Path) -> Vec<PathBuf> {
    let mut v = vec![
        cfg.freepbx.config_file.clone(),
        cfg.freepbx.amportal_conf.clone(),
        cfg.freepbx.voicemail_conf.clone(),
        config_path.to_path_buf(),
    ];
    if let Some(s) = &cfg.freepbx.snapshot {
        v.push(s.clone());
    }
    v.sort();
    v.dedup();
    v
}

/// The TOML table of one section, for "did this section change?" on reload.
fn section(text: &str, name: &str) -> Option<toml::Value> {
    let v: toml::Value = toml::from_str(text).ok()?;
    v.get(name).cloned()
}

/// The core server slug for the lock name: `[isymphony] core_server`, else the cxpanel
/// settings (kvstore, then the legacy table), else `default`.
async fn core_server_slug(cfg: &Config, opts: &Opts) -> Result<String, mysql_async::Error> {
    if let Some(s) = &cfg.isymphony.core_server {
        return Ok(s.clone());
    }
    let mut conn = mysql_async::Conn::new(opts.clone()).await?;
    let kv: Result<Option<String>, _> = conn
        .query_first(
            "SELECT CAST(val AS CHAR) FROM kvstore_FreePBX_modules_Cxpanel \
             WHERE id = 'settings_server' AND `key` = 'name'",
        )
        .await;
    let mut slug = kv.ok().flatten().filter(|s| !s.is_empty());
    if slug.is_none() {
        let legacy: Result<Option<String>, _> = conn
            .query_first("SELECT name FROM cxpanel_server LIMIT 1")
            .await;
        slug = legacy.ok().flatten().filter(|s| !s.is_empty());
    }
    let _ = conn.disconnect().await;
    Ok(slug.unwrap_or_else(|| reconcile::source::DEFAULT_CORE_SERVER.to_string()))
}

/// Tasks bound to one database configuration: the change poll and the leader election.
struct DbWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DbWorkers {
    fn start(
        cfg: Arc<Config>,
        state: Arc<AgentState>,
        triggers: TriggerSender,
        role: Arc<watch::Sender<Role>>,
        link: Arc<LockLink>,
    ) -> DbWorkers {
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if cfg.freepbx.snapshot.is_some() {
            // A snapshot file is the source: no database to poll or lock; this agent writes.
            role.send_replace(Role::Leader);
            state.set_freepbx(true, None);
        } else {
            tasks.push(tokio::spawn(poll_loop(
                cfg.clone(),
                state.clone(),
                triggers,
                stop_rx.clone(),
            )));
            tasks.push(tokio::spawn(election_loop(cfg, state, role, link, stop_rx)));
        }
        DbWorkers { stop, tasks }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
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
            match d.poll().await {
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
    let retry = cfg
        .freepbx
        .poll_interval
        .clamp(Duration::from_millis(100), Duration::from_secs(1));
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

/// glibc keeps freed heap pages of every thread arena; a long-running agent whose passes
/// allocate a snapshot of 10,000 extensions should give them back between passes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_memory() {}

/// Fewer malloc arenas: less memory held in per-thread free lists (glibc only).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_arenas() {
    // SAFETY: mallopt is called before the worker threads allocate much, with a valid option.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_arenas() {}

/// Run the daemon until SIGTERM/SIGINT. Errors are startup failures (exit 1).
pub async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    limit_arenas();
    let text = std::fs::read_to_string(&config_path).unwrap_or_default();
    let raw_cfg = Config::load(&config_path)?;
    let mut history = reload::History::new(text);
    let state = Arc::new(AgentState::new());
    state.set_config(Some(config_path.display().to_string()));
    let notifier = Notifier::from_env().map(Arc::new);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Control>();
    let (trig, trig_rx) = scheduler::channel();
    let view = Arc::new(Mutex::new(SchedulerView::default()));
    let (cfg_tx, cfg_rx) = watch::channel(Arc::new(raw_cfg.clone()));
    let role_tx = Arc::new(watch::channel(Role::Standby).0);

    let exec = PassExecutor::start()?;
    let api: Arc<dyn AgentApi> = Arc::new(DaemonApi {
        state: state.clone(),
        exec: exec.clone(),
        triggers: trig.clone(),
        cfg: cfg_rx.clone(),
        view: view.clone(),
    });

    // The listeners first: READY=1 means "configuration loaded and endpoint listening".
    let mut endpoint = Some(
        start_endpoint(&raw_cfg, api.clone(), state.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the embedded endpoint: {e}"))?,
    );
    let mut cfg = Arc::new(effective(raw_cfg.clone(), endpoint.as_ref()));
    cfg_tx.send_replace(cfg.clone());

    // Role changes: status, metrics, and a full pass on becoming leader.
    let mut role_rx = role_tx.subscribe();
    {
        let state = state.clone();
        let trig = trig.clone();
        tokio::spawn(async move {
            while role_rx.changed().await.is_ok() {
                let r = *role_rx.borrow();
                let lock = state.status().lock;
                state.set_role(r, lock);
                if r == Role::Leader {
                    trig.trigger(TriggerSource::Leadership, true);
                }
            }
        });
    }

    // The scheduler and its pass.
    let last_target = wipecheck::SharedTarget::default();
    let link = LockLink::new();
    let (stopping_tx, stopping_rx) = watch::channel(None::<String>);
    let sched = {
        let runner = PassRunner {
            state: state.clone(),
            exec: exec.clone(),
            notifier: notifier.clone(),
            link: link.clone(),
            role: role_tx.subscribe(),
            stopping: stopping_rx,
            last_target: last_target.clone(),
        };
        let cfg_rx = cfg_rx.clone();
        let pass = move |req: PassRequest| {
            let runner = runner.clone();
            let cfg = cfg_rx.borrow().clone();
            async move {
                let r = runner.run(cfg, req).await;
                release_memory();
                r
            }
        };
        tokio::spawn(scheduler::run(
            trig_rx,
            timing(&cfg),
            shutdown_rx.clone(),
            view.clone(),
            pass,
        ))
    };

    // The quick check for a wiped or reinstalled iSymphony.
    tokio::spawn(
        wipecheck::CheckLoop {
            cfg: cfg_rx.clone(),
            role: role_tx.subscribe(),
            view: view.clone(),
            state: state.clone(),
            triggers: trig.clone(),
            last: last_target,
            stop: shutdown_rx.clone(),
        }
        .run(),
    );

    let mut workers = DbWorkers::start(
        cfg.clone(),
        state.clone(),
        trig.clone(),
        role_tx.clone(),
        link.clone(),
    );
    let mut watched = watched_files(&cfg, &config_path);
    let mut file_watch = start_file_watch(&watched, &config_path, &cfg, &ctl_tx, &trig);

    // Signals.
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;

    // Watchdog pings from the runtime: a wedged runtime stops them and systemd restarts us.
    if let (Some(n), Some(every)) = (notifier.clone(), notify::watchdog_interval()) {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            loop {
                t.tick().await;
                let _ = n.watchdog();
            }
        });
    }

    trig.trigger(TriggerSource::Startup, true);
    if let Some(n) = &notifier {
        let _ = n.ready("started; waiting for the first pass");
    }
    tracing::info!(config = %config_path.display(), "isymphony-sync agent started");

    loop {
        tokio::select! {
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: shutting down");
                stopping_tx.send_replace(Some("the agent is shutting down (SIGTERM)".into()));
                break;
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: shutting down");
                stopping_tx.send_replace(Some("the agent is shutting down (SIGINT)".into()));
                break;
            }
            _ = sighup.recv() => { let _ = ctl_tx.send(Control::Reload("SIGHUP")); }
            Some(msg) = ctl_rx.recv() => {
                // Editors produce bursts of events: let the burst settle, then act once.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut reload = None;
                let mut fpbx = false;
                for m in std::iter::once(msg).chain(std::iter::from_fn(|| ctl_rx.try_recv().ok())) {
                    match m {
                        Control::Reload(why) => reload = Some(why),
                        Control::FreepbxConfChanged => fpbx = true,
                    }
                }
                // Watch events for an unchanged file (touch, chmod) are not reloads; SIGHUP is.
                // A half-written file is never applied (see `reload`).
                if let Some(why) = reload {
                    match reload::examine(&config_path, &history, why == "SIGHUP").await {
                        reload::Outcome::Unchanged => {}
                        reload::Outcome::Rejected { error: e, text } => {
                            tracing::error!(error = %e, "configuration reload ({why}) rejected; keeping the running configuration");
                            state.reload_failed(e.to_string());
                            history.rejected = Some(text);
                        }
                        reload::Outcome::Apply { text, config: new_raw } => {
                            history.rejected = None;
                            let old_text = std::mem::replace(&mut history.loaded, text.clone());
                            let server_changed = section(&old_text, "server") != section(&text, "server");
                            if server_changed {
                                if let Some(ep) = endpoint.take() {
                                    let _ = tokio::time::timeout(SERVER_STOP, ep.shutdown()).await;
                                }
                                match start_endpoint(&new_raw, api.clone(), state.clone()).await {
                                    Ok(ep) => endpoint = Some(ep),
                                    Err(e) => tracing::error!(error = %e, "embedded endpoint could not restart with the new configuration"),
                                }
                            }
                            let new_cfg = Arc::new(effective(*new_raw, endpoint.as_ref()));
                            let db_changed = section(&old_text, "freepbx") != section(&text, "freepbx")
                                || cfg.isymphony.core_server != new_cfg.isymphony.core_server;
                            cfg = new_cfg;
                            cfg_tx.send_replace(cfg.clone());
                            trig.send(SchedulerMsg::Configure(timing(&cfg)));
                            if db_changed {
                                fpbx = true;
                            }
                            let new_watched = watched_files(&cfg, &config_path);
                            if new_watched != watched {
                                watched = new_watched;
                                file_watch = start_file_watch(&watched, &config_path, &cfg, &ctl_tx, &trig);
                            }
                            state.set_config(Some(config_path.display().to_string()));
                            tracing::info!(trigger = why, server_restarted = server_changed, "configuration reloaded");
                            trig.trigger(TriggerSource::Reload, false);
                        }
                    }
                }
                if fpbx {
                    workers.stop().await;
                    workers = DbWorkers::start(cfg.clone(), state.clone(), trig.clone(), role_tx.clone(), link.clone());
                    trig.trigger(TriggerSource::File, false);
                }
            }
        }
    }

    // Shutdown: no more triggers; the scheduler finishes or drops its pass.
    if let Some(n) = &notifier {
        let _ = n.stopping("shutting down");
    }
    drop(file_watch);
    let _ = shutdown_tx.send(true);
    let _ = sched.await;
    // Releasing the lock and stopping the endpoint are bounded, so that the process exits
    // within 10 s of the signal (an unreleased lock is freed when our connection closes).
    let cleanup = async {
        workers.stop().await;
        if let Some(ep) = endpoint.take() {
            ep.shutdown().await;
        }
    };
    if tokio::time::timeout(SERVER_STOP, cleanup).await.is_err() {
        tracing::warn!("shutdown cleanup did not finish in time; exiting anyway");
    }
    tracing::info!("isymphony-sync agent stopped");
    Ok(())
}

fn start_file_watch(
    files: &[PathBuf],
    config_path: &Path,
    cfg: &Config,
    ctl: &mpsc::UnboundedSender<Control>,
    trig: &TriggerSender,
) -> Option<fwatch::FileWatcher> {
    let ctl = ctl.clone();
    let trig = trig.clone();
    let config_path = config_path.to_path_buf();
    let fpbx_conf = cfg.freepbx.config_file.clone();
    let amportal = cfg.freepbx.amportal_conf.clone();
    match fwatch::watch_files(files, move |p| {
        if p == config_path {
            let _ = ctl.send(Control::Reload("config file changed"));
        } else if p == fpbx_conf || p == amportal {
            let _ = ctl.send(Control::FreepbxConfChanged);
        } else {
            tracing::debug!(file = %p.display(), "watched file changed");
            trig.trigger(TriggerSource::File, false);
        }
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; relying on the periodic verify");
            None
        }
    }
}
