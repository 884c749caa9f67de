//! Frozen kinds: kinds whose FreePBX source is unknown this pass ([`Desired::frozen`]: a table
//! FreePBX implies is missing or unreadable, voicemail.conf cannot be trusted).
//!
//! "Unknown" must never read as "no rows": an empty source would turn into deletions and an
//! incomplete one into updates that blank fields. So [`hold_frozen`] takes every operation of a
//! frozen kind out of the plan (creates too: they would be built from the same incomplete data),
//! with whatever depends on them, and forgets the facts and fingerprints the pass would have
//! recorded for them, so the next pass with a readable source compares afresh. One warning per
//! kind says what was held back and why.
//!
//! Kinds whose source is known only in part ([`Desired::held_deletes`]: a required `#include`
//! of voicemail.conf is missing) lose only their deletions ([`hold_deletes`]): what was read is
//! created and updated as usual. The fingerprint of a set whose deletions waited is recorded
//! with [`HELD_MARK`] in front, so that the pass that no longer holds them reads that set
//! again and finishes the job, while passes that still hold them read nothing.
//!
//! Neither kind is read object by object while it is frozen or held ([`super::sub_reads`]):
//! a change-free pass costs its top-level reads whatever is frozen.

use super::plan::{Action, Plan};
use crate::model::Desired;
use crate::model::Kind;
use std::collections::{BTreeMap, HashSet};

/// In front of a fingerprint recorded while deletions of its set were held.
pub const HELD_MARK: &str = "held:";

/// Take the deletions of the kinds in `d.held_deletes` out of `plan`, with what needs them,
/// and mark the fingerprints of the sets they belong to (see module docs).
pub fn hold_deletes(plan: &mut Plan, d: &Desired) {
    let kinds = &d.held_deletes;
    if kinds.is_empty() {
        return;
    }
    let mut held: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut held_keys: HashSet<(Kind, String)> = HashSet::new();
    let mut sets: HashSet<String> = HashSet::new();
    loop {
        let before = plan.ops.len();
        plan.ops.retain(|op| {
            let delete = op.action == Action::Delete && kinds.contains_key(&op.kind);
            if delete || op.needs.iter().any(|n| held_keys.contains(n)) {
                *held.entry(op.kind).or_default() += 1;
                held_keys.insert((op.kind, op.key.clone()));
                sets.extend(op.fingerprint.clone());
                false
            } else {
                true
            }
        });
        if plan.ops.len() == before {
            break;
        }
    }
    for f in plan.fingerprints.iter_mut() {
        if sets.contains(&f.key) {
            f.value = format!("{HELD_MARK}{}", f.value);
        }
    }
    for (kind, reason) in kinds {
        let what = match held.get(kind) {
            Some(n) => format!("{n} removals held back this pass"),
            None => "none is removed while this lasts".to_string(),
        };
        plan.warnings
            .push(format!("{}: {what}: {reason}", kind.heading()));
    }
}

/// Remove from `plan` everything that belongs to a frozen kind of `d` (see module docs).
pub fn hold_frozen(plan: &mut Plan, d: &Desired) {
    let frozen = &d.frozen;
    if frozen.is_empty() {
        return;
    }
    let mut held: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut held_keys: HashSet<(Kind, String)> = HashSet::new();
    // Ops are in no particular order yet; repeat until no op depends on a held one.
    loop {
        let before = plan.ops.len();
        plan.ops.retain(|op| {
            let frozen_kind = frozen.contains_key(&op.kind);
            if frozen_kind || op.needs.iter().any(|n| held_keys.contains(n)) {
                *held.entry(op.kind).or_default() += 1;
                held_keys.insert((op.kind, op.key.clone()));
                false
            } else {
                true
            }
        });
        if plan.ops.len() == before {
            break;
        }
    }
    plan.fingerprints.retain(|f| {
        !frozen.contains_key(&f.kind) && !f.needs.iter().any(|n| held_keys.contains(n))
    });
    plan.verified.retain(|e| !frozen.contains_key(&e.kind()));
    for (kind, reason) in frozen {
        let n = held.get(kind).copied().unwrap_or(0);
        let what = if n == 0 {
            String::new()
        } else {
            format!(" ({n} changes held back)")
        };
        plan.warnings.push(format!(
            "{} left as they are this pass{what}: {reason}",
            kind.heading()
        ));
    }
    // Dependents of another kind that were held with them.
    for (kind, n) in &held {
        if !frozen.contains_key(kind) {
            plan.warnings.push(format!(
                "{} left as they are this pass ({n} changes held back): they depend on a kind \
                 whose FreePBX source is unknown",
                kind.heading()
            ));
        }
    }
}
