//! Reconciliation: one pass reads FreePBX and iSymphony afresh, diffs the desired state
//! against the observed one, and prints or applies the plan (level-triggered: nothing but the
//! two sides and the agent's own state store decides what a pass does).
//!
//! - [`diff`]: `diff(&Desired, &Observed, &Ownership) -> Plan`, pure.
//! - [`plan`]: the Plan, its text/JSON rendering.
//! - [`apply`]: runs a Plan in dependency order with bounded concurrency.
//! - [`ownership`]: recomputable ids and which server objects the agent manages.
//! - [`state`]: the agent's own SQLite state (adoptions, pushed-password hashes, added
//!   sub-items, fingerprints).
//! - [`observe`]: reading the iSymphony side.
//! - [`source`]: reading FreePBX and resolving the target (cxpanel settings as defaults).
//! - [`cli`]: the `--sync-now` / `--dry-run` front end.

pub mod apply;
pub mod cli;
pub mod diff;
pub mod observe;
pub mod ownership;
pub mod plan;
pub mod source;
pub mod state;

pub use crate::api::client::RequestCounts;
pub use diff::{diff, sub_reads, Observed, SubReads};
pub use ownership::{ManagedItem, Ownership};
pub use plan::Plan;

use crate::api::client::{Client, ClientConfig};
use crate::config::Config;
use crate::model::Desired;
use source::{SourceInput, Target};
use state::StateStore;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// How a pass runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Plan only: no POST/PUT/DELETE, no state written.
    pub dry_run: bool,
    /// Re-read every sub-resource (contact, e-mails, phones, managing user).
    pub full: bool,
    /// Override the safety valve.
    pub force: bool,
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
    pub counts_by_kind: BTreeMap<String, usize>,
    /// Failed operations, failed reads, state store problems.
    pub errors: Vec<String>,
    pub dry_run: bool,
    /// Set when the safety valve refused the deletes.
    pub refused: Option<String>,
    /// Where the pass went (URL without credentials) and the core server slug.
    pub target: String,
    /// Sub-resources read this pass.
    pub sub_reads: usize,
}

impl PassReport {
    fn new(started: SystemTime, dry_run: bool) -> PassReport {
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
            target: String::new(),
            sub_reads: 0,
        }
    }

    /// `--sync-now`: 0 applied or nothing needed, 1 error. `--dry-run`: 0 in sync, 2 changes
    /// pending, 1 error.
    pub fn exit_code(&self, dry_run: bool) -> u8 {
        if self.failed > 0 || !self.errors.is_empty() || self.refused.is_some() {
            1
        } else if dry_run && !self.plan.is_empty() {
            2
        } else {
            0
        }
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
        let mut line = if self.plan.is_empty() {
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
        if let Some(r) = &self.refused {
            line.push_str(&format!("; safety valve refused deletes: {r}"));
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
        serde_json::json!({
            "plan": self.plan.to_json(),
            "dry_run": self.dry_run,
            "applied": self.applied,
            "failed": self.failed,
            "errors": self.errors,
            "refused": self.refused,
            "requests": self.requests,
            "started_ms": ms(self.started),
            "finished_ms": ms(self.finished),
            "counts_by_kind": self.counts_by_kind,
            "target": self.target,
            "summary": self.summary_line(),
            "exit_code": self.exit_code(self.dry_run),
        })
    }
}

/// Why a pass could not run (messages never contain passwords).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("FreePBX unreadable: {0}")]
    FreepbxUnreadable(String),
    #[error("iSymphony unreachable: {0}")]
    IsymphonyUnreachable(String),
    #[error("safety valve refused: {message} (nothing was deleted; use --force to override)")]
    SafetyValve {
        message: String,
        report: Box<PassReport>,
    },
    #[error("refusing to delete: {0}")]
    EmptySource(String),
    #[error("agent state: {0}")]
    State(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl ReconcileError {
    /// The pass report, when the pass got as far as planning.
    pub fn report(&self) -> Option<&PassReport> {
        match self {
            ReconcileError::SafetyValve { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// Counts of desired objects by kind.
pub fn counts_by_kind(d: &Desired) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    m.insert("administrator".into(), d.administrators.len());
    m.insert("extension".into(), d.extensions.len());
    m.insert("user".into(), d.users.len());
    m.insert("queue".into(), d.queues.len());
    m.insert("conference_room".into(), d.conference_rooms.len());
    m.insert("parking_lot".into(), usize::from(d.parking_lot.is_some()));
    m
}

/// One pass: read FreePBX, resolve the target (cxpanel settings as defaults, TOML overrides),
/// observe, diff, apply unless `dry_run`.
pub async fn run_pass(cfg: &Config, opts: &PassOptions) -> Result<PassReport, ReconcileError> {
    run_pass_with_progress(cfg, opts, None).await
}

/// [`run_pass`] with a progress callback `(done, total)` for long applies.
pub async fn run_pass_with_progress(
    cfg: &Config,
    opts: &PassOptions,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Result<PassReport, ReconcileError> {
    let started = SystemTime::now();
    let input = source::read(cfg).await?;
    run_pass_on(cfg, opts, input, progress, started).await
}

/// The pass on an already-read FreePBX side (tests and benchmarks drive this directly).
pub async fn run_pass_on(
    cfg: &Config,
    opts: &PassOptions,
    input: SourceInput,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
    started: SystemTime,
) -> Result<PassReport, ReconcileError> {
    let target = source::resolve_target(cfg, &input.defaults);
    let mut desired = input.desired;
    desired.core_server.slug = target.core_server.clone();
    if desired.core_server.name.is_empty() {
        desired.core_server.name = target.core_server.clone();
    }
    let mut report = PassReport::new(started, opts.dry_run);
    report.counts_by_kind = counts_by_kind(&desired);
    report.target = format!("{} (core server {})", target.url, target.core_server);

    let scope = target.scope();
    let mut store = if opts.dry_run {
        None
    } else {
        Some(
            StateStore::open(cfg.state_dir(), &scope)
                .map_err(|e| ReconcileError::State(e.to_string()))?,
        )
    };
    let known = match &store {
        Some(s) => s.load(),
        None => StateStore::load_read_only(cfg.state_dir(), &scope),
    }
    .map_err(|e| ReconcileError::State(e.to_string()))?;
    let own = Ownership::new(
        &target.core_server,
        cfg.sync.clean_unknown_items,
        known,
        &input.managed_items,
    );
    let client = make_client(cfg, &target)?;
    let concurrency = cfg.sync.concurrency.max(1);

    let mut observed = observe::observe_top(&client, &desired)
        .await
        .map_err(|e| ReconcileError::IsymphonyUnreachable(e.to_string()))?;

    // A missing core server is created first, so that everything below it can be read.
    let mut pre_ops = Vec::new();
    if observed.core_server.is_none() && !opts.dry_run {
        let first = diff(&desired, &observed, &own);
        let core_plan = Plan {
            ops: first
                .ops
                .into_iter()
                .filter(|op| op.kind == plan::Kind::CoreServer)
                .collect(),
            ..Plan::default()
        };
        let out = apply::apply(
            &client,
            &core_plan,
            store.as_mut(),
            &apply::ApplyOptions {
                concurrency,
                skip_deletes: false,
                progress: None,
            },
        )
        .await;
        report.applied += out.applied;
        report.failed += out.failed;
        report.errors.extend(out.errors);
        if out.failed > 0 {
            report.plan = core_plan;
            report.requests = client.counts();
            report.finished = SystemTime::now();
            return Ok(report);
        }
        pre_ops = core_plan.ops;
        observed = observe::observe_top(&client, &desired)
            .await
            .map_err(|e| ReconcileError::IsymphonyUnreachable(e.to_string()))?;
    }

    let reads = sub_reads(&desired, &observed, &own, opts.full);
    report.sub_reads = reads.len();
    let read_errors = observe::observe_subs(&client, &mut observed, &reads, concurrency).await;
    report.errors.extend(read_errors);

    let plan = diff(&desired, &observed, &own);

    // An empty source never turns into "delete everything", not even with --force.
    let deletes = plan
        .ops
        .iter()
        .filter(|op| op.action == plan::Action::Delete && op.kind.guarded())
        .count();
    if desired_is_empty(&desired) && deletes > 0 {
        return Err(ReconcileError::EmptySource(format!(
            "FreePBX provided no extensions, users, queues, conference rooms or administrators, \
             but the plan would delete {deletes} objects; check the FreePBX source"
        )));
    }
    let violations = if opts.force {
        Vec::new()
    } else {
        plan.safety_violations(cfg.sync.max_delete_fraction)
    };
    if !violations.is_empty() {
        report.refused = Some(violations.join("; "));
    }

    if !opts.dry_run {
        let out = apply::apply(
            &client,
            &plan,
            store.as_mut(),
            &apply::ApplyOptions {
                concurrency,
                skip_deletes: report.refused.is_some(),
                progress,
            },
        )
        .await;
        report.applied += out.applied;
        report.failed += out.failed;
        report.errors.extend(out.errors);
    }
    let mut plan = plan;
    if !pre_ops.is_empty() {
        pre_ops.append(&mut plan.ops);
        plan.ops = pre_ops;
    }
    report.plan = plan;
    report.requests = client.counts();
    report.finished = SystemTime::now();
    if let Some(message) = report.refused.clone() {
        return Err(ReconcileError::SafetyValve {
            message,
            report: Box::new(report),
        });
    }
    Ok(report)
}

fn desired_is_empty(d: &Desired) -> bool {
    d.extensions.is_empty()
        && d.users.is_empty()
        && d.queues.is_empty()
        && d.conference_rooms.is_empty()
        && d.administrators.is_empty()
}

/// The API client for a resolved target, with the `[isymphony]` timeout and TLS settings.
pub fn make_client(cfg: &Config, target: &Target) -> Result<Client, ReconcileError> {
    let mut cc = ClientConfig::new(&target.url, &target.username, target.password.clone());
    cc.timeout = cfg.isymphony.timeout.unwrap_or(Duration::from_secs(10));
    cc.tls_verify = cfg.isymphony.tls_verify.unwrap_or(true);
    cc.ca_file = cfg.isymphony.ca_file.clone();
    cc.pool_size = cfg.sync.concurrency.max(1) * 2;
    cc.agent_token = cfg.isymphony.agent_token.clone();
    Client::new(&cc).map_err(|e| ReconcileError::Config(e.to_string()))
}
