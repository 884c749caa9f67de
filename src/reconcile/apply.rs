//! Executes a [`Plan`]: stage by stage (parents first, bindings after both ends, deletes of
//! children before parents), with bounded concurrency inside a stage.
//!
//! A failed operation does not stop independent ones; operations that need it (a binding whose
//! user could not be created) are skipped and counted as failed. What the state store records
//! (adoptions, pushed passwords, added sub-items, fingerprints) is committed after each stage,
//! and only for operations the server confirmed.
//!
//! The safety valve can withhold the deletions of some kinds: those operations, and any that
//! need them, are not sent and count as withheld (neither applied nor failed); the
//! fingerprints they belong to are dropped, so the next pass looks again.
//!
//! With a [`WriteGate`], each stage starts only after the gate confirmed it may write, and no
//! operation starts once the gate is revoked: the apply stops there, unapplied, and drops the
//! plan's fingerprints so that the next pass reads those sub-resources again.

use super::facts::Effect;
use super::gate::{Denied, WriteGate};
use super::plan::{Action, Method, Op, Plan};
use super::progress::{Progress, Stage};
use super::state::writes::Write;
use super::state::StateStore;
use crate::api::client::{ApiError, Client};
use crate::model::Kind;
use futures::stream::{self, StreamExt};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

/// What happened when a plan was applied.
#[derive(Debug, Clone, Default)]
pub struct ApplyOutcome {
    pub applied: usize,
    pub failed: usize,
    /// Operations not sent because the safety valve withheld them (or what they need).
    pub withheld: usize,
    /// One line per failed or skipped operation, and per state store problem.
    pub errors: Vec<String>,
    /// Operations iSymphony refused for licensing, with its answer (to hold them, see
    /// [`super::refusals`]).
    pub licence_refused: Vec<(Op, String)>,
    /// Set when the write gate stopped the apply: why. The operations not started are neither
    /// applied nor failed.
    pub aborted: Option<Denied>,
}

/// Options of one apply.
pub struct ApplyOptions<'a> {
    pub concurrency: usize,
    /// Kinds whose delete operations are withheld (the safety valve refused them).
    pub withhold_deletes: BTreeSet<Kind>,
    /// Told after each operation.
    pub progress: Option<&'a dyn Progress>,
    /// Asked before each stage and between operations (the daemon's writer lock).
    pub gate: Option<&'a dyn WriteGate>,
    /// When the pass started: it names the pass in the record of each object's last write.
    pub pass_started: SystemTime,
    /// The fingerprints the state store holds: one the plan confirms unchanged is not
    /// written again (after a full verify, that is all of them).
    pub known_fingerprints: Option<&'a HashMap<String, String>>,
}

/// The request's JSON (`null` when it has none; shared, not copied).
fn body_of(r: &super::plan::Request) -> bytes::Bytes {
    match &r.body {
        Some(b) => b.bytes().clone(),
        None => bytes::Bytes::from_static(b"null"),
    }
}

async fn execute(client: &Client, op: &Op) -> Result<(), ApiError> {
    let r = &op.request;
    match r.method {
        // The planned bytes, shared: no clone or serialisation of a body per request.
        Method::Post => client
            .post_json(&r.path, body_of(r), r.confirm.as_ref())
            .await
            .map(drop),
        Method::Put => client.put_json(&r.path, body_of(r)).await,
        Method::Delete => match client.delete(&r.path).await {
            // Already gone (a retried DELETE, or someone was faster): the goal is reached.
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        },
    }
}

/// Apply `plan`; record confirmed effects in `state` (when given) after each stage.
pub async fn apply(
    client: &Client,
    plan: &Plan,
    mut state: Option<&mut StateStore>,
    opts: &ApplyOptions<'_>,
) -> ApplyOutcome {
    let mut out = ApplyOutcome::default();
    let (ops, withheld) = withhold(plan, &opts.withhold_deletes);
    out.withheld = withheld.ops;
    let total = ops.len();
    let stages: BTreeSet<u8> = ops.iter().map(|op| op.stage).collect();
    let mut failed_keys: HashSet<(Kind, String)> = HashSet::new();
    let mut failed_fps: HashSet<String> = withheld.fingerprints;
    let mut done = 0usize;
    for stage in stages {
        let mut runnable = Vec::new();
        for op in ops.iter().filter(|op| op.stage == stage) {
            if let Some(n) = op.needs.iter().find(|n| failed_keys.contains(n)) {
                out.failed += 1;
                out.errors.push(format!(
                    "skipped ({} {} failed): {}",
                    n.0.label(),
                    n.1,
                    op.describe()
                ));
                failed_keys.insert((op.kind, op.key.clone()));
                failed_fps.extend(op.fingerprint.clone());
                done += 1;
                continue;
            }
            runnable.push(*op);
        }
        if let (Some(g), false) = (opts.gate, runnable.is_empty()) {
            if let Err(why) = g.confirm().await {
                out.aborted = Some(why);
                break;
            }
        }
        let gate = opts.gate;
        let results = run_stage(client, runnable, opts, &mut done, total).await;
        let mut effects: Vec<Effect> = Vec::new();
        let mut writes: Vec<Write> = Vec::new();
        for (op, r) in results {
            match r {
                None => {
                    if out.aborted.is_none() {
                        out.aborted = gate.and_then(|g| g.revoked());
                    }
                }
                Some(Ok(())) => {
                    out.applied += 1;
                    effects.extend(op.effects.iter().cloned());
                    writes.push(Write::of_op(op));
                }
                Some(Err(e)) => {
                    out.failed += 1;
                    tracing::warn!(error = %e, "{}", op.describe());
                    if let Some(answer) = super::refusals::licence_refusal(&e) {
                        out.errors.push(format!(
                            "{}: {e}; {}",
                            op.describe(),
                            super::refusals::HOLD_HINT
                        ));
                        out.licence_refused.push((op.clone(), answer));
                    } else {
                        out.errors.push(format!("{}: {e}", op.describe()));
                    }
                    failed_keys.insert((op.kind, op.key.clone()));
                    failed_fps.extend(op.fingerprint.clone());
                }
            }
        }
        commit(state.as_deref_mut(), &effects, &[], &[], &mut out);
        record(state.as_deref_mut(), opts.pass_started, &writes, &mut out);
        if out.aborted.is_some() {
            break;
        }
    }
    if out.aborted.is_some() {
        // Stopped part-way: forget every fingerprint of the plan, so nothing is trusted.
        let all: Vec<String> = plan.fingerprints.iter().map(|f| f.key.clone()).collect();
        commit(state, &[], &[], &all, &mut out);
        return out;
    }
    let (mut set, drop_) = settle(plan, &failed_fps, &failed_keys, &withheld.keys);
    if let Some(known) = opts.known_fingerprints {
        set.retain(|(k, v)| known.get(k) != Some(v));
    }
    commit(state.as_deref_mut(), &plan.verified, &set, &drop_, &mut out);
    // Objects taken over as they were (no write): their record says so.
    let adopted = Write::adoptions(&plan.verified);
    record(state, opts.pass_started, &adopted, &mut out);
    out
}

/// The plan's fingerprints to store (everything they depend on succeeded) and to drop (so the
/// next pass re-reads those sub-resources).
fn settle(
    plan: &Plan,
    failed_fps: &HashSet<String>,
    failed_keys: &HashSet<(Kind, String)>,
    withheld_keys: &HashSet<(Kind, String)>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut set = Vec::new();
    let mut drop_ = Vec::new();
    for f in &plan.fingerprints {
        let ok = !failed_fps.contains(&f.key)
            && !f
                .needs
                .iter()
                .any(|n| failed_keys.contains(n) || withheld_keys.contains(n));
        if ok {
            set.push((f.key.clone(), f.value.clone()));
        } else {
            drop_.push(f.key.clone());
        }
    }
    (set, drop_)
}

/// Record the confirmed writes of a stage (see [`super::state::writes::LastWrite`]).
fn record(
    state: Option<&mut StateStore>,
    pass: SystemTime,
    writes: &[Write],
    out: &mut ApplyOutcome,
) {
    if let Some(st) = state {
        if let Err(e) = st.record_writes(pass, writes) {
            out.errors.push(e.to_string());
        }
    }
}

/// Run the operations of one stage with bounded concurrency; `None` for an operation not
/// started because the gate was revoked.
async fn run_stage<'p>(
    client: &Client,
    runnable: Vec<&'p Op>,
    opts: &ApplyOptions<'_>,
    done: &mut usize,
    total: usize,
) -> Vec<(&'p Op, Option<Result<(), ApiError>>)> {
    let gate = opts.gate;
    stream::iter(runnable)
        .map(|op| async move {
            // Revoked during the stage: start nothing more (ops in flight finish).
            if gate.is_some_and(|g| g.revoked().is_some()) {
                return (op, None);
            }
            (op, Some(execute(client, op).await))
        })
        .buffer_unordered(opts.concurrency.max(1))
        .inspect(|_| {
            *done += 1;
            if let Some(p) = opts.progress {
                p.step(Stage::Applying, *done, total);
            }
        })
        .collect()
        .await
}

fn commit(
    state: Option<&mut StateStore>,
    effects: &[Effect],
    set: &[(String, String)],
    drop_: &[String],
    out: &mut ApplyOutcome,
) {
    if let Some(st) = state {
        if let Err(e) = st.commit(effects, set, drop_) {
            out.errors.push(e.to_string());
        }
    }
}

/// What the valve keeps back from one apply.
struct Withheld {
    ops: usize,
    keys: HashSet<(Kind, String)>,
    fingerprints: HashSet<String>,
}

/// Split the plan into the operations to run and what is withheld: deletes of `kinds`, then
/// (transitively) every operation that needs a withheld one.
fn withhold<'p>(plan: &'p Plan, kinds: &BTreeSet<Kind>) -> (Vec<&'p Op>, Withheld) {
    let mut w = Withheld {
        ops: 0,
        keys: HashSet::new(),
        fingerprints: HashSet::new(),
    };
    let mut keep = Vec::with_capacity(plan.ops.len());
    // Ops are sorted by stage and needs point to earlier stages, so one walk suffices.
    for op in &plan.ops {
        let refused = op.action == Action::Delete && kinds.contains(&op.kind);
        if refused || op.needs.iter().any(|n| w.keys.contains(n)) {
            w.ops += 1;
            w.keys.insert((op.kind, op.key.clone()));
            w.fingerprints.extend(op.fingerprint.clone());
        } else {
            keep.push(op);
        }
    }
    (keep, w)
}
