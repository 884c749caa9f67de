//! Licence refusals converge (issue 10, point 11).
//!
//! iSymphony answers a change its licence does not allow (a full user with no full-user
//! licence left) with 403, or 412, and a message about the licence. Sending the same change
//! again cannot succeed, so the agent remembers it (in the state store: the operation's
//! fingerprint together with the fingerprint of the whole desired state it came from) and
//! holds it: later passes leave it, and whatever needs it (the contact, e-mails and binding of
//! a user that could not be created), out of the plan and list it as a warning instead. It is
//! tried again once the desired state changes (any FreePBX change: another user made lite or
//! deleted may have freed a licence) or when a pass runs with `--force` (after a licence was
//! added in iSymphony). So a refusal is reported once per change of desired state, and
//! `--dry-run` exits 0 when nothing else is pending.

use super::facts::{fingerprint, Refusal};
use super::plan::{Action, Op, Plan};
use super::state::StateStore;
use crate::api::client::ApiError;
use crate::model::Desired;
use crate::model::Kind;
use std::collections::{HashMap, HashSet};

type Known = HashMap<(Kind, String, String), Refusal>;

/// One pass's part: hold before applying, remember after (the desired state is fingerprinted
/// only when there is something to hold or to record).
pub struct Holds<'a> {
    desired: &'a Desired,
    /// The refusals the state store held at the start of the pass.
    known: &'a Known,
    desired_fp: Option<String>,
    held: Vec<Refusal>,
}

impl<'a> Holds<'a> {
    pub fn new(desired: &'a Desired, known: &'a Known) -> Self {
        Holds {
            desired,
            known,
            desired_fp: None,
            held: Vec::new(),
        }
    }

    fn desired_fp(&mut self) -> String {
        let d = self.desired;
        self.desired_fp
            .get_or_insert_with(|| fingerprint(d))
            .clone()
    }

    /// Take the held operations out of `plan` (see [`hold`]); `force` holds nothing.
    pub fn hold(&mut self, plan: &mut Plan, force: bool) {
        if !force && !self.known.is_empty() {
            let fp = self.desired_fp();
            self.held = hold(plan, self.known, &fp);
        }
    }

    /// After the apply: store what stays held plus what was refused now (written only when it
    /// changed; a store problem is added to `errors`).
    pub fn remember(
        mut self,
        refused: &[(Op, String)],
        store: Option<&mut StateStore>,
        errors: &mut Vec<String>,
    ) {
        if !refused.is_empty() {
            let fp = self.desired_fp();
            self.held
                .extend(refused.iter().map(|(op, answer)| record(op, &fp, answer)));
        }
        let Some(store) = store else { return };
        let mut now = self.held;
        now.sort();
        now.dedup_by(|a, b| (&a.kind, &a.key, &a.action) == (&b.kind, &b.key, &b.action));
        let mut old: Vec<&Refusal> = self.known.values().collect();
        old.sort();
        if old.len() == now.len() && old.iter().zip(&now).all(|(a, b)| *a == b) {
            return;
        }
        if let Err(e) = store.replace_refusals(&now) {
            errors.push(e.to_string());
        }
    }
}

/// What the agent does about a licence refusal, for the error line and the plan warning.
pub const HOLD_HINT: &str = "iSymphony refused it for licensing, so the agent holds this \
    change instead of sending it every pass; it is tried again when FreePBX's data changes \
    (e.g. after making another user lite) or by `isymphony-sync --sync-now --force` after a \
    licence was added in iSymphony";

/// The server's answer when `e` is a licence refusal: 403 or 412 whose message speaks of the
/// licence (403 alone also means a wrong password or an ACL refusal, which are not held).
pub fn licence_refusal(e: &ApiError) -> Option<String> {
    match e {
        ApiError::Status {
            status: status @ (403 | 412),
            message,
            ..
        } if message.to_ascii_lowercase().contains("licen") => {
            let short: String = message.chars().take(200).collect();
            Some(format!("HTTP {status}: {short}"))
        }
        _ => None,
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    }
}

fn op_key(op: &Op) -> (Kind, String, String) {
    (op.kind, op.key.clone(), action_name(op.action).to_string())
}

/// The operation as sent (path and body, hashed: bodies may hold password hashes) and the
/// desired state it was computed from.
fn op_fp(op: &Op, desired_fp: &str) -> String {
    let r = &op.request;
    fingerprint(&(
        action_name(op.action),
        op.kind.type_name(),
        &op.key,
        &r.path,
        &r.body,
        desired_fp,
    ))
}

/// The record to keep for an operation refused this pass.
pub fn record(op: &Op, desired_fp: &str, answer: &str) -> Refusal {
    let (kind, key, action) = op_key(op);
    Refusal {
        kind,
        key,
        action,
        fp: op_fp(op, desired_fp),
        message: answer.to_string(),
    }
}

/// Take the operations refused before for the same desired state (and what needs them) out of
/// `plan`, with a warning each; returns the records that stay held.
pub fn hold(plan: &mut Plan, known: &Known, desired_fp: &str) -> Vec<Refusal> {
    if known.is_empty() {
        return Vec::new();
    }
    let held: Vec<Option<&Refusal>> = plan
        .ops
        .iter()
        .map(|op| {
            known
                .get(&op_key(op))
                .filter(|r| r.fp == op_fp(op, desired_fp))
        })
        .collect();
    let records: Vec<Refusal> = held.iter().flatten().map(|r| (*r).clone()).collect();
    if records.is_empty() {
        return records;
    }
    // Objects that will not exist: whatever needs them is held too (transitively).
    let mut missing: HashSet<(Kind, String)> = HashSet::new();
    let mut dependent = vec![false; plan.ops.len()];
    for (op, h) in plan.ops.iter().zip(&held) {
        if h.is_some() && op.action == Action::Create {
            missing.insert((op.kind, op.key.clone()));
        }
    }
    loop {
        let mut grew = false;
        for (i, op) in plan.ops.iter().enumerate() {
            if held[i].is_none() && !dependent[i] && op.needs.iter().any(|n| missing.contains(n)) {
                dependent[i] = true;
                grew |= missing.insert((op.kind, op.key.clone()));
            }
        }
        if !grew {
            break;
        }
    }
    let mut warnings = Vec::new();
    for (op, h) in plan.ops.iter().zip(&held) {
        let Some(r) = h else { continue };
        let deps = plan
            .ops
            .iter()
            .zip(&dependent)
            .filter(|(d, is_dep)| **is_dep && d.needs.contains(&(op.kind, op.key.clone())))
            .count();
        let more = match deps {
            0 => String::new(),
            1 => " (and 1 change that needs it)".to_string(),
            n => format!(" (and {n} changes that need it)"),
        };
        warnings.push(format!(
            "held: {}{more}: {}; {HOLD_HINT}",
            op.describe(),
            r.message
        ));
    }
    let ops = std::mem::take(&mut plan.ops);
    plan.ops = ops
        .into_iter()
        .enumerate()
        .filter(|(i, _)| held[*i].is_none() && !dependent[*i])
        .map(|(_, op)| op)
        .collect();
    plan.fingerprints
        .retain(|f| !f.needs.iter().any(|n| missing.contains(n)));
    plan.warnings.extend(warnings);
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::{Method, Request};
    use serde_json::json;

    fn op(kind: Kind, key: &str, action: Action, needs: Vec<(Kind, String)>) -> Op {
        Op {
            action,
            kind,
            key: key.into(),
            label: None,
            changes: Vec::new(),
            stage: 0,
            request: Request {
                method: Method::Post,
                path: format!("/x/{key}"),
                body: Some(super::super::plan::Body::of(
                    &json!({"username": key, "full": true}),
                )),
                confirm: None,
            },
            effects: Vec::new(),
            needs,
            fingerprint: None,
        }
    }

    fn refused(status: u16, message: &str) -> ApiError {
        ApiError::Status {
            method: "POST".into(),
            path: "/x".into(),
            status,
            message: message.into(),
        }
    }

    #[test]
    fn only_licence_answers_count() {
        assert!(licence_refusal(&refused(403, "No full user licenses are available")).is_some());
        assert!(licence_refusal(&refused(412, "Licence limit reached")).is_some());
        assert!(licence_refusal(&refused(403, "Access denied")).is_none());
        assert!(licence_refusal(&refused(500, "license server down")).is_none());
    }

    #[test]
    fn a_held_create_takes_its_dependents_along_until_the_desired_state_changes() {
        let user = op(Kind::User, "1002", Action::Create, vec![]);
        let needs = vec![(Kind::User, "1002".to_string())];
        let mut plan = Plan {
            ops: vec![
                user.clone(),
                op(Kind::Contact, "1002", Action::Create, needs.clone()),
                op(
                    Kind::ManagingUser,
                    "1002",
                    Action::Create,
                    vec![(Kind::Contact, "1002".into())],
                ),
                op(Kind::Queue, "400", Action::Update, vec![]),
            ],
            ..Plan::default()
        };
        let r = record(&user, "d1", "HTTP 403: no licence");
        let known: HashMap<_, _> = [((r.kind, r.key.clone(), r.action.clone()), r.clone())]
            .into_iter()
            .collect();
        let mut other = plan.clone();
        assert!(hold(&mut other, &known, "d2").is_empty(), "desired changed");
        assert_eq!(other.ops.len(), 4);
        let kept = hold(&mut plan, &known, "d1");
        assert_eq!(kept, vec![r]);
        assert_eq!(plan.ops.len(), 1);
        assert_eq!(plan.ops[0].kind, Kind::Queue);
        assert_eq!(plan.warnings.len(), 1);
        let w = &plan.warnings[0];
        assert!(w.starts_with("held: + create user 1002 (and 1 change that needs it): HTTP 403"));
    }
}
