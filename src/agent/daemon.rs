//! The daemon: `isymphony-sync --config F` with no mode flag.
//!
//! Wiring: load the configuration; start the embedded endpoint (with the agent resources)
//! when `[server] enabled`; send READY=1; then feed triggers (database fingerprint, file
//! watches, the periodic verify, `POST …/sync`, leadership gained) into the
//! [`scheduler`](super::scheduler), whose pass runs `reconcile::run_pass` only while this
//! agent is the [`leader`](super::leader). Each pass logs one line and sends STATUS=.
//! SIGHUP or a change of the config file re-reads it: a valid one replaces the running one
//! (restarting only the parts whose settings changed), an invalid one is logged and ignored.
//! SIGTERM/SIGINT stop the triggers, let a running pass finish (or drop it at an await point
//! after a grace period; passes are crash-safe), release the lock and exit 0 within 10 s.

use super::executor::PassExecutor;
use super::leader::{self, ElectionTiming, Role};
use super::notify::{self, Notifier};
use super::scheduler::{
    self, PassRequest, PassResult, SchedulerMsg, SchedulerView, Timing, TriggerSender,
    TriggerSource,
};
use super::status::{AgentState, PassRecord, PassResultKind};
use super::watch::{self as fwatch, ChangeDetector, Poll};
use crate::config::Config;
use crate::reconcile::{self, PassOptions, ReconcileError};
use crate::server::agent::{AgentApi, PlanFuture};
use mysql_async::prelude::Queryable;
use mysql_async::Opts;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long shutdown lets an in-flight pass run before dropping it.
const PASS_GRACE: Duration = Duration::from_secs(5);
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
                full: false,
                force: false,
            };
            match exec.run(cfg, opts).await {
                Some(Ok(report)) => Ok(report.to_json()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the agent is shutting down".into()),
            }
        })
    }
}

fn timing(cfg: &Config) -> Timing {
    Timing {
        debounce: cfg.sync.debounce,
        resync_interval: cfg.sync.resync_interval.max(Duration::from_secs(1)),
        backoff_min: Duration::from_secs(1).min(cfg.sync.retry_backoff_max),
        backoff_max: cfg.sync.retry_backoff_max,
        shutdown_grace: PASS_GRACE,
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
            tasks.push(tokio::spawn(election_loop(cfg, state, role, stop_rx)));
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
    let mut detector: Option<ChangeDetector> = None;
    let mut was_down = false;
    loop {
        if *stop.borrow() {
            break;
        }
        if detector.is_none() {
            match crate::freepbx::connect_opts(&cfg) {
                Ok(opts) => detector = Some(ChangeDetector::new(opts)),
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
        if let Some(d) = detector.as_mut() {
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
                    let msg = e.to_string();
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
    if let Some(mut d) = detector {
        d.close().await;
    }
}

/// Keep competing for the writer lock until stopped.
async fn election_loop(
    cfg: Arc<Config>,
    state: Arc<AgentState>,
    role: Arc<watch::Sender<Role>>,
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
                leader::run(opts, name, timing, tx, stop.clone()).await;
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

/// Turn a pass outcome into the status record, the log line and the scheduler's answer.
fn finish_pass(
    state: &AgentState,
    notifier: Option<&Notifier>,
    req: &PassRequest,
    started: SystemTime,
    outcome: Option<Result<reconcile::PassReport, ReconcileError>>,
) -> PassResult {
    let finished = SystemTime::now();
    let triggers: Vec<&str> = req.sources.iter().map(|s| s.as_str()).collect();
    let (result, summary, applied, failed, counts, error) = match &outcome {
        None => (
            PassResultKind::Failed,
            "stopped: leadership lost or shutting down".to_string(),
            0,
            0,
            BTreeMap::new(),
            Some("leadership lost during the pass".to_string()),
        ),
        Some(Ok(r)) => {
            for op in &r.plan.ops {
                tracing::debug!("write: {}", op.describe());
            }
            let counts: BTreeMap<String, u64> = r
                .counts_by_kind
                .iter()
                .map(|(k, v)| (k.clone(), *v as u64))
                .collect();
            let ok = r.failed == 0 && r.errors.is_empty() && r.refused.is_none();
            state.set_freepbx(true, None);
            if ok {
                state.set_isymphony(true, None);
            } else {
                state.set_isymphony(r.failed == 0, r.errors.first().cloned());
            }
            (
                if ok {
                    PassResultKind::Success
                } else {
                    PassResultKind::Partial
                },
                r.summary_line(),
                r.applied as u64,
                r.failed as u64,
                counts,
                r.errors.first().cloned().or_else(|| r.refused.clone()),
            )
        }
        Some(Err(e)) => {
            let msg = e.to_string();
            match e {
                ReconcileError::FreepbxUnreadable(_) => state.set_freepbx(false, Some(msg.clone())),
                ReconcileError::IsymphonyUnreachable(_) => {
                    state.set_freepbx(true, None);
                    state.set_isymphony(false, Some(msg.clone()));
                }
                _ => {}
            }
            (
                PassResultKind::Failed,
                format!("failed: {msg}"),
                0,
                0,
                BTreeMap::new(),
                Some(msg),
            )
        }
    };
    let secs = finished
        .duration_since(started)
        .unwrap_or_default()
        .as_secs_f64();
    let counts_text: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match result {
        PassResultKind::Success => tracing::info!(
            result = result.as_str(),
            triggers = %triggers.join(","),
            full = req.full,
            applied,
            failed,
            counts = %counts_text.join(" "),
            seconds = secs,
            "pass: {summary}"
        ),
        _ => tracing::warn!(
            result = result.as_str(),
            triggers = %triggers.join(","),
            full = req.full,
            applied,
            failed,
            counts = %counts_text.join(" "),
            seconds = secs,
            "pass: {summary}"
        ),
    }
    if let Some(n) = notifier {
        let _ = n.status(&format!("{}: {summary}", result.as_str()));
    }
    let latency = match (result, req.first_change) {
        (PassResultKind::Success, Some(t)) => Some(t.elapsed()),
        _ => None,
    };
    state.record_pass(
        PassRecord {
            started,
            finished,
            result,
            full: req.full,
            triggers: req.sources.clone(),
            summary,
            applied,
            failed,
            counts_by_kind: counts,
            error,
        },
        latency,
    );
    match result {
        PassResultKind::Success => PassResult::Ok,
        _ => PassResult::Failed,
    }
}

/// The running endpoint (embedded iSymphony API + agent resources).
struct Endpoint {
    handle: crate::server::ServerHandle,
}

async fn start_endpoint(
    cfg: &Config,
    api: Arc<dyn AgentApi>,
    state: Arc<AgentState>,
) -> Result<Endpoint, String> {
    let routes = crate::server::agent::router(api);
    let handle = crate::server::start_observed(
        &cfg.server,
        Some(routes),
        Some(Arc::new(move |method: &str, status: u16| {
            state.http_request(method, status)
        })),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(url = %handle.base_url(), "agent resources at /isymphony-sync/api/");
    Ok(Endpoint { handle })
}

/// Apply the embedded endpoint's address to a config whose `[isymphony] url` is unset.
fn effective(mut cfg: Config, endpoint: Option<&Endpoint>) -> Config {
    if let Some(ep) = endpoint {
        let base = ep.handle.base_url();
        reconcile::source::target_embedded(&mut cfg, &base);
        // Our own passes into our own endpoint never meet its login lockout.
        reconcile::source::trust_embedded(&mut cfg, &base, ep.handle.agent_token());
    }
    cfg
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
    let mut loaded_text = text;
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

    // The endpoint first: READY=1 means "configuration loaded and endpoint listening".
    let mut endpoint = if raw_cfg.server.enabled {
        Some(
            start_endpoint(&raw_cfg, api.clone(), state.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot start the embedded endpoint: {e}"))?,
        )
    } else {
        None
    };
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
    let sched = {
        let state = state.clone();
        let cfg_rx = cfg_rx.clone();
        let role_rx = role_tx.subscribe();
        let notifier = notifier.clone();
        let exec = exec.clone();
        let pass = move |req: PassRequest| {
            let exec = exec.clone();
            let state = state.clone();
            let cfg = cfg_rx.borrow().clone();
            let mut role_rx = role_rx.clone();
            let notifier = notifier.clone();
            async move {
                if *role_rx.borrow() != Role::Leader {
                    tracing::debug!("standby: pass skipped");
                    return PassResult::Skipped;
                }
                let started = SystemTime::now();
                let opts = PassOptions {
                    dry_run: false,
                    full: req.full,
                    force: false,
                };
                tracing::debug!(full = req.full, "pass started");
                // Losing the lock stops the pass at its next await point (crash-safe), so
                // two agents never write at once.
                let outcome = tokio::select! {
                    r = exec.run(cfg, opts) => r,
                    _ = role_rx.wait_for(|r| *r != Role::Leader) => None,
                };
                let r = finish_pass(&state, notifier.as_deref(), &req, started, outcome);
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

    let mut workers = DbWorkers::start(cfg.clone(), state.clone(), trig.clone(), role_tx.clone());
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
            _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: shutting down"); break; }
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
                let text = std::fs::read_to_string(&config_path).unwrap_or_default();
                // Watch events for an unchanged file (touch, chmod) are not reloads; SIGHUP is.
                if let Some(why) = reload.filter(|w| *w == "SIGHUP" || text != loaded_text) {
                    match Config::load(&config_path) {
                        Err(e) => {
                            tracing::error!(error = %e, "configuration reload ({why}) rejected; keeping the running configuration");
                            state.reload_failed(e.to_string());
                        }
                        Ok(new_raw) => {
                            let old_text = std::mem::replace(&mut loaded_text, text.clone());
                            let server_changed = section(&old_text, "server") != section(&text, "server");
                            if server_changed {
                                if let Some(ep) = endpoint.take() {
                                    let _ = tokio::time::timeout(SERVER_STOP, ep.handle.shutdown()).await;
                                }
                                if new_raw.server.enabled {
                                    match start_endpoint(&new_raw, api.clone(), state.clone()).await {
                                        Ok(ep) => endpoint = Some(ep),
                                        Err(e) => tracing::error!(error = %e, "embedded endpoint could not restart with the new configuration"),
                                    }
                                }
                            }
                            let new_cfg = Arc::new(effective(new_raw, endpoint.as_ref()));
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
                            trig.trigger(TriggerSource::Startup, false);
                        }
                    }
                }
                if fpbx {
                    workers.stop().await;
                    workers = DbWorkers::start(cfg.clone(), state.clone(), trig.clone(), role_tx.clone());
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
            ep.handle.shutdown().await;
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
