//! Reconciliation: one pass reads FreePBX and iSymphony afresh, diffs the desired state
//! against the observed one, and prints or applies the plan (level-triggered: nothing but the
//! two sides and the agent's own state store decides what a pass does).
//!
//! - [`diff`]: `diff(&Desired, &Observed, &Ownership) -> Plan`, pure.
//! - [`plan`]: the Plan, its text/JSON rendering.
//! - [`apply`]: runs a Plan in dependency order with bounded concurrency.
//! - [`gate`]: permission to write, confirmed before each write stage (the daemon's lock).
//! - [`ownership`]: recomputable ids and which server objects the agent manages.
//! - [`facts`]: what a pass learns and the state store keeps.
//! - [`state`]: the agent's own SQLite state (adoptions, pushed-password hashes, added
//!   sub-items, fingerprints).
//! - [`refusals`]: changes iSymphony refused for licensing, held until the desired state
//!   changes.
//! - [`frozen`]: leaving alone the kinds whose FreePBX source is unknown this pass.
//! - [`observe`]: reading the iSymphony side (what it could not read: [`observe::Gaps`]).
//! - [`partial`]: leaving out what depends on an unreadable collection or object.
//! - [`valve`]: the safety valve, per kind.
//! - `pass_state`: how a pass starts: the agent state opened beside the top-level read.
//! - `passwords`: when a stored password is pushed to an existing login (private).
//! - [`source`]: reading FreePBX and resolving the target (cxpanel settings as defaults).
//! - [`adopt`]: the one-time adoption of what the cxpanel module posted unrecorded.
//! - [`progress`]: how far a pass is, for a front end to show.
//! - `outcome`: [`PassOutcome`], how a pass ended (private module, re-exported).
//! - `reuse`: the daemon's iSymphony client kept between passes, and its read ahead (private).
//! - [`render`]: a pass report as text for people.

pub mod adopt;
pub mod apply;
pub mod diff;
pub mod facts;
pub mod frozen;
pub mod gate;
pub mod observe;
mod outcome;
pub mod ownership;
pub mod partial;
mod pass_state;
mod passwords;
pub mod plan;
pub mod progress;
pub mod refusals;
pub mod render;
mod reuse;
pub mod source;
pub mod state;
pub mod valve;

pub use crate::api::client::RequestCounts;
pub use diff::{diff, sub_reads, Observed, SubReads};
pub use outcome::PassOutcome;
pub use ownership::{ManagedItem, Ownership};
pub use plan::Plan;
pub use progress::{Progress, Stage};

use crate::api::client::{ApiError, Client, ClientConfig};
use crate::config::Config;
use crate::model::{Desired, Kind};
use source::{SourceInput, Target};
use state::StateStore;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// How a pass runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Plan only: no POST/PUT/DELETE, no state written.
    pub dry_run: bool,
    /// Re-read every sub-resource (contact, e-mails, phones, managing user).
    pub full: bool,
    /// Override the safety valve, and retry changes held after a licence refusal.
    pub force: bool,
    /// Take over what the cxpanel module posted but never recorded (see [`adopt`]); implies a
    /// full read of the sub-resources.
    pub adopt_cxpanel: bool,
    /// Log what could not be read at debug only: the caller logs it (the daemon warns once
    /// when the set of unreadable resources appears or changes, not on every pass).
    pub quiet_gaps: bool,
    /// Keep the FreePBX connection, the iSymphony client and the state store open for the
    /// next pass (the daemon; see [`crate::kept`]).
    pub keep_open: bool,
}

/// What a pass did (or, dry, would do).
#[derive(Debug, Clone)]
pub struct PassReport {
    pub plan: Plan,
    pub applied: usize,
    pub failed: usize,
    /// Requests this pass sent to iSymphony, by method.
    pub requests: RequestCounts,
    pub started: SystemTime,
    pub finished: SystemTime,
    /// Desired objects by kind (`extension`, `user`, …).
    pub counts_by_kind: BTreeMap<Kind, usize>,
    /// Failed operations, failed reads, state store problems.
    pub errors: Vec<String>,
    pub dry_run: bool,
    /// Set when the safety valve refused the deletes of some kinds.
    pub refused: Option<String>,
    /// Operations withheld by the safety valve (deletions of the refused kinds and what needs
    /// them); everything else was applied.
    pub withheld: usize,
    /// What could not be read on the iSymphony side (path, status, what was skipped): the
    /// pass is partial.
    pub unreadable: Vec<String>,
    /// The reads behind `unreadable`, by path and status.
    pub unreadable_keys: BTreeSet<observe::GapKey>,
    /// Operations left out because they depend on something unreadable.
    pub skipped: usize,
    /// Where the pass went (URL without credentials) and the core server slug.
    pub target: String,
    /// Sub-resources read this pass.
    pub sub_reads: usize,
    /// The resolved target (for the daemon's quick iSymphony check); never rendered.
    pub resolved: Option<Target>,
}

impl PassReport {
    pub(crate) fn new(started: SystemTime, dry_run: bool) -> PassReport {
        PassReport {
            plan: Plan::default(),
            applied: 0,
            failed: 0,
            requests: RequestCounts::default(),
            started,
            finished: started,
            counts_by_kind: BTreeMap::new(),
            errors: Vec::new(),
            dry_run,
            refused: None,
            withheld: 0,
            unreadable: Vec::new(),
            unreadable_keys: BTreeSet::new(),
            skipped: 0,
            target: String::new(),
            sub_reads: 0,
            resolved: None,
        }
    }

    /// Counts the outcome of creating the core server; false when it failed.
    fn take_core_outcome(&mut self, out: apply::ApplyOutcome) -> bool {
        self.applied += out.applied;
        self.failed += out.failed;
        self.errors.extend(out.errors);
        out.failed == 0
    }

    fn finish_with(&mut self, plan: Plan, client: &Client) {
        self.plan = plan;
        self.requests = client.counts();
        self.finished = SystemTime::now();
    }

    fn for_target(&mut self, desired: &Desired, target: &Target) {
        self.counts_by_kind = counts_by_kind(desired);
        self.target = format!(
            "{} (core server {})",
            crate::text::redact_url(&target.url),
            crate::text::escape_control(&target.core_server)
        );
        self.resolved = Some(target.clone());
    }

    /// What the pass came to (the front end turns it into an exit code, see
    /// [`PassOutcome::code`]).
    pub fn outcome(&self) -> PassOutcome {
        if !self.is_complete() {
            PassOutcome::Partial
        } else if self.plan.is_empty() {
            PassOutcome::InSync
        } else {
            PassOutcome::Changes
        }
    }

    /// The safety valve's refusal, when it withheld deletions: the pass is partial, and the
    /// front ends report it as an error.
    pub fn valve_refusal(&self) -> Option<valve::Refused> {
        self.refused.clone().map(valve::Refused)
    }

    /// Everything was read, planned and applied (or, dry, would be): no failed operation,
    /// no error, no refusal, nothing unreadable.
    pub fn is_complete(&self) -> bool {
        self.failed == 0
            && self.errors.is_empty()
            && self.refused.is_none()
            && self.unreadable.is_empty()
    }

    pub fn elapsed(&self) -> Duration {
        self.finished
            .duration_since(self.started)
            .unwrap_or_default()
    }

    /// One line for logs and the terminal.
    pub fn summary_line(&self) -> String {
        let objects: usize = self.counts_by_kind.values().sum();
        let secs = self.elapsed().as_secs_f64();
        let s = self.plan.summary();
        let mut line = if self.plan.ops.is_empty() && self.plan.adoptions.is_empty() {
            format!("in sync: nothing to do ({objects} objects checked)")
        } else if self.dry_run {
            format!(
                "{} changes pending ({} create, {} update, {} delete)",
                self.plan.ops.len(),
                s.create,
                s.update,
                s.delete
            )
        } else {
            format!(
                "applied {} of {} operations, {} failed",
                self.applied,
                self.plan.ops.len(),
                self.failed
            )
        };
        if !self.plan.adoptions.is_empty() {
            let verb = if self.dry_run { "to adopt" } else { "adopted" };
            line.push_str(&format!("; {} {verb}", self.plan.adoptions.len()));
        }
        if let Some(r) = &self.refused {
            line.push_str(&format!(
                "; safety valve withheld {} deletions: {r}",
                self.withheld
            ));
        }
        if !self.unreadable.is_empty() {
            line.push_str(&format!(
                "; partial: {} iSymphony resources unreadable, {} operations skipped",
                self.unreadable.len(),
                self.skipped
            ));
        }
        if !self.errors.is_empty() && self.failed == 0 {
            line.push_str(&format!("; {} errors", self.errors.len()));
        }
        line.push_str(&format!(" in {secs:.2}s, {}", self.requests));
        line
    }

    /// The report for tools (`--output json`).
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        let mut v = serde_json::json!({
            "plan": self.plan.to_json(),
            "dry_run": self.dry_run,
            "applied": self.applied,
            "failed": self.failed,
            "errors": self.errors,
            "refused": self.refused,
            "withheld": self.withheld,
            "unreadable": self.unreadable,
            "skipped": self.skipped,
            "partial": !self.unreadable.is_empty(),
            "requests": self.requests,
            "started_ms": ms(self.started),
            "finished_ms": ms(self.finished),
            "counts_by_kind": self.counts_by_kind,
            "target": self.target,
            "summary": self.summary_line(),
            "exit_code": self.outcome().code(self.dry_run),
        });
        // A withheld deletion is reported as an error, as tools have always seen it.
        if let Some(e) = self.valve_refusal() {
            v["error"] = serde_json::json!({"kind": "safety_valve", "message": e.to_string()});
        }
        v
    }
}

/// Why a pass could not run (messages never contain passwords).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// (The text may quote the database server: one line, control characters escaped.)
    #[error("FreePBX unreadable: {}", crate::text::escape_control(&.0.to_string()))]
    FreepbxUnreadable(#[from] crate::freepbx::FreepbxError),
    #[error("iSymphony unreachable: {0}")]
    IsymphonyUnreachable(#[source] ApiError),
    /// The server answered, but refused (or garbled) the core server itself: nothing below it
    /// can be read.
    #[error("iSymphony refused the core server: {0}; check the [isymphony] username and password, the iSymphony ACL and licence")]
    IsymphonyRefused(#[source] ApiError),
    #[error("refusing to delete: FreePBX provided no extensions, users, queues, conference rooms or administrators, but the plan would delete {deletes} objects; check the FreePBX source")]
    EmptySource { deletes: usize },
    #[error("agent state: {0}")]
    State(#[from] state::StateError),
    /// The API client could not be set up from the `[isymphony]` settings (TLS files).
    #[error("configuration: {0}")]
    Config(#[source] ApiError),
    /// The write gate stopped the pass before a write stage or operation: nothing more was
    /// sent; what `report` counts as applied had been applied.
    #[error("stopped before writing everything: {reason}")]
    Stopped {
        #[source]
        reason: gate::Denied,
        report: Box<PassReport>,
    },
}

impl ReconcileError {
    /// The pass report, when the pass got as far as planning.
    pub fn report(&self) -> Option<&PassReport> {
        match self {
            ReconcileError::Stopped { report, .. } => Some(report),
            _ => None,
        }
    }

    /// How the pass ended: it failed.
    pub fn outcome(&self) -> PassOutcome {
        PassOutcome::Failed
    }
}

/// Counts of desired objects by kind (the kinds [`Desired::count`] counts).
pub fn counts_by_kind(d: &Desired) -> BTreeMap<Kind, usize> {
    Kind::all()
        .filter_map(|k| d.count(k).map(|n| (k, n)))
        .collect()
}

/// One pass: read FreePBX, resolve the target (cxpanel settings as defaults, TOML overrides),
/// observe, diff, apply unless `dry_run`.
pub async fn run_pass(cfg: &Config, opts: &PassOptions) -> Result<PassReport, ReconcileError> {
    run_pass_with_progress(cfg, opts, None).await
}

/// [`run_pass`] telling `progress` how far its long stages are.
pub async fn run_pass_with_progress(
    cfg: &Config,
    opts: &PassOptions,
    progress: Option<&dyn Progress>,
) -> Result<PassReport, ReconcileError> {
    let started = SystemTime::now();
    let input = source::read(cfg).await?;
    run_pass_on(cfg, opts, input, progress, started).await
}

/// [`run_pass`] that writes only while `gate` allows it (confirmed before each write stage).
pub async fn run_pass_gated(
    cfg: &Config,
    opts: &PassOptions,
    gate: Option<&dyn gate::WriteGate>,
) -> Result<PassReport, ReconcileError> {
    let started = SystemTime::now();
    // The daemon reads iSymphony's top level on the last pass's target while FreePBX is read
    // (see `reuse`).
    let keep = opts.keep_open;
    let (input, ahead) = futures::join!(source::read_keeping(cfg, keep), async {
        match keep {
            true => reuse::read_ahead().await,
            false => None,
        }
    });
    run_pass_inner(cfg, opts, input?, (None, gate, ahead), started).await
}

/// The pass on an already-read FreePBX side (tests and benchmarks drive this directly).
pub async fn run_pass_on(
    cfg: &Config,
    opts: &PassOptions,
    input: SourceInput,
    progress: Option<&dyn Progress>,
    started: SystemTime,
) -> Result<PassReport, ReconcileError> {
    run_pass_inner(cfg, opts, input, (progress, None, None), started).await
}

/// A pass's hooks: the progress callback, the write gate and the daemon's read ahead.
type Hooks<'a> = (
    Option<&'a dyn Progress>,
    Option<&'a dyn gate::WriteGate>,
    Option<reuse::Ahead>,
);

async fn run_pass_inner(
    cfg: &Config,
    opts: &PassOptions,
    input: SourceInput,
    (progress, gate, ahead): Hooks<'_>,
    started: SystemTime,
) -> Result<PassReport, ReconcileError> {
    let target = source::resolve_target(cfg, &input.defaults);
    let cxpanel = input.cxpanel;
    let desired = for_target(input.desired, &target);
    let mut report = PassReport::new(started, opts.dry_run);
    report.for_target(&desired, &target);
    // A FreePBX source that is not fully known (a missing table) is an error of the pass; the
    // kinds it feeds are frozen (see `frozen`), everything else is still applied.
    report.errors.extend(desired.errors.iter().cloned());

    let pass_state::Start {
        client,
        mut store,
        mut own,
        top: (mut observed, mut gaps),
    } = pass_state::start(cfg, opts, &target, &desired, &input.managed_items, ahead).await?;
    let concurrency = cfg.sync.concurrency.max(1);

    // A missing core server is created first, so that everything below it can be read.
    let mut pre_ops = Vec::new();
    if observed.core_server.is_none() && !opts.dry_run {
        let core_plan = diff::core_server_only(&desired, &observed, &own);
        let out = apply::apply(
            &client,
            &core_plan,
            store.as_mut(),
            &apply::ApplyOptions {
                concurrency,
                withhold_deletes: BTreeSet::new(),
                progress: None,
                gate,
                pass_started: started,
                known_fingerprints: None,
            },
        )
        .await;
        let aborted = out.aborted.clone();
        if !report.take_core_outcome(out) || aborted.is_some() {
            return match aborted {
                Some(reason) => Err(stopped(report, core_plan, &client, reason)),
                None => {
                    report.finish_with(core_plan, &client);
                    Ok(report)
                }
            };
        }
        pre_ops = core_plan.ops;
        (observed, gaps) = read_top(&client, &desired).await?;
    }

    let reads = sub_reads(&desired, &observed, &own, opts.full || opts.adopt_cxpanel);
    report.sub_reads = reads.len();
    gaps.add(observe::observe_subs(&client, &mut observed, &reads, concurrency, progress).await);
    let adoptions = adopt::if_asked(opts.adopt_cxpanel, &desired, &observed, &mut own, cxpanel);
    let mut plan = plan_around_gaps(&desired, &observed, &own, gaps, &mut report, opts);
    adopt::into_plan(&mut plan, adoptions);
    // Changes refused for licensing before, for this same desired state, wait (see refusals).
    let mut holds = refusals::Holds::new(&desired, &own.known.refusals);
    holds.hold(&mut plan, opts.force);

    let refusals = guard_deletes(cfg, opts, &desired, &plan)?;
    if !refusals.is_empty() {
        report.refused = Some(valve::describe(&refusals));
        report.withheld = refusals.iter().map(|r| r.deletes).sum();
    }

    let apply_opts = (!opts.dry_run).then(|| apply::ApplyOptions {
        concurrency,
        withhold_deletes: refusals.iter().map(|r| r.kind).collect(),
        progress,
        gate,
        pass_started: started,
        known_fingerprints: Some(&own.known.fingerprints),
    });
    let done = apply_stage(
        &client,
        plan,
        pre_ops,
        store.as_mut(),
        holds,
        apply_opts,
        report,
    )
    .await;
    if opts.keep_open && done.is_ok() {
        reuse::keep(cfg, &target, &desired, client);
        if let Some(s) = store {
            s.keep();
        }
    }
    done
}

/// The apply stage of a pass: apply `plan` (not in a dry run: `apply_opts` is None), remember
/// what was refused for licensing, and finish the report with the whole plan, the operations
/// that created the core server first. A refusal of the safety valve makes the pass partial.
async fn apply_stage(
    client: &Client,
    mut plan: Plan,
    mut pre_ops: Vec<plan::Op>,
    mut store: Option<&mut StateStore>,
    holds: refusals::Holds<'_>,
    apply_opts: Option<apply::ApplyOptions<'_>>,
    mut report: PassReport,
) -> Result<PassReport, ReconcileError> {
    if let Some(apply_opts) = apply_opts {
        let out = apply::apply(client, &plan, store.as_deref_mut(), &apply_opts).await;
        report.applied += out.applied;
        report.failed += out.failed;
        report.withheld = out.withheld;
        report.errors.extend(out.errors);
        holds.remember(&out.licence_refused, store, &mut report.errors);
        if let Some(reason) = out.aborted {
            pre_ops.append(&mut plan.ops);
            plan.ops = pre_ops;
            return Err(stopped(report, plan, client, reason));
        }
    }
    if !pre_ops.is_empty() {
        pre_ops.append(&mut plan.ops);
        plan.ops = pre_ops;
    }
    report.finish_with(plan, client);
    Ok(report)
}

/// The plan, less what depends on what could not be read (recorded in `report`).
fn plan_around_gaps(
    desired: &Desired,
    observed: &Observed,
    own: &Ownership,
    gaps: observe::Gaps,
    report: &mut PassReport,
    opts: &PassOptions,
) -> Plan {
    let mut plan = diff(desired, observed, own);
    report.skipped = partial::withhold(&mut plan, &gaps);
    for w in &gaps.warnings {
        if opts.quiet_gaps {
            tracing::debug!("{w}");
        } else {
            tracing::warn!("{w}");
        }
    }
    plan.warnings.extend(gaps.warnings.iter().cloned());
    report.unreadable = gaps.warnings;
    report.unreadable_keys = gaps.keys;
    valve::count_sub_items(&mut plan, own);
    plan
}

/// The desired state with the target's core server (and its notes as warnings).
fn for_target(mut desired: Desired, target: &Target) -> Desired {
    desired.warnings.extend(target.notes.iter().cloned());
    desired.core_server.slug = target.core_server.clone();
    if desired.core_server.name.is_empty() {
        desired.core_server.name = target.core_server.clone();
    }
    desired
}

/// An empty source never turns into "delete everything", not even with --force; otherwise the
/// safety valve's refusals (none with --force).
fn guard_deletes(
    cfg: &Config,
    opts: &PassOptions,
    desired: &Desired,
    plan: &Plan,
) -> Result<Vec<valve::Refusal>, ReconcileError> {
    let deletes = plan
        .ops
        .iter()
        .filter(|op| op.action == plan::Action::Delete && op.kind.guarded())
        .count();
    if desired_is_empty(desired) && deletes > 0 {
        return Err(ReconcileError::EmptySource { deletes });
    }
    if opts.force {
        return Ok(Vec::new());
    }
    Ok(valve::check(
        plan,
        cfg.sync.max_delete_fraction,
        cfg.sync.valve_min_managed,
    ))
}

/// Read the top level; only the core server itself is required (see [`observe`]).
async fn read_top(
    client: &Client,
    desired: &Desired,
) -> Result<(Observed, observe::Gaps), ReconcileError> {
    observe::observe_top(client, desired)
        .await
        .map_err(top_error)
}

/// Why the top level could not be read: unreachable, or refused.
fn top_error(e: ApiError) -> ReconcileError {
    if e.is_unreachable() {
        ReconcileError::IsymphonyUnreachable(e)
    } else {
        ReconcileError::IsymphonyRefused(e)
    }
}

/// The error of a pass the write gate stopped, with what it had done.
fn stopped(
    mut report: PassReport,
    plan: Plan,
    client: &Client,
    reason: gate::Denied,
) -> ReconcileError {
    report.finish_with(plan, client);
    ReconcileError::Stopped {
        reason,
        report: Box::new(report),
    }
}

fn desired_is_empty(d: &Desired) -> bool {
    d.extensions.is_empty()
        && d.users.is_empty()
        && d.queues.is_empty()
        && d.conference_rooms.is_empty()
        && d.administrators.is_empty()
}

/// Close what daemon passes kept open for the next one (see [`crate::kept`]): the FreePBX
/// connection, the iSymphony client and the state store. The daemon calls it at shutdown.
pub fn release_kept() {
    crate::freepbx::release_kept();
    reuse::release();
    state::StateStore::release_kept();
}

/// The API client for a resolved target, with the `[isymphony]` timeout and TLS settings.
pub fn make_client(cfg: &Config, target: &Target) -> Result<Client, ReconcileError> {
    let mut cc = ClientConfig::new(&target.url, &target.username, target.password.clone());
    cc.timeout = cfg.isymphony.timeout.unwrap_or(Duration::from_secs(10));
    cc.tls_verify = cfg.isymphony.tls_verify.unwrap_or(true);
    cc.ca_file = cfg.isymphony.ca_file.clone();
    cc.pool_size = cfg.sync.concurrency.max(1) * 2;
    if let Some(n) = cfg.isymphony.max_response_bytes {
        cc.max_response_bytes = n;
    }
    cc.agent_token = cfg.isymphony.agent_token.clone();
    Client::new(&cc).map_err(ReconcileError::Config)
}
