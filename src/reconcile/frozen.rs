//! Frozen kinds: kinds whose FreePBX source is unknown this pass ([`Desired::frozen`]: a table
//! FreePBX implies is missing or unreadable, voicemail.conf cannot be trusted).
//!
//! "Unknown" must never read as "no rows": an empty source would turn into deletions and an
//! incomplete one into updates that blank fields. So [`hold_frozen`] takes every operation of a
//! frozen kind out of the plan (creates too: they would be built from the same incomplete data),
//! with whatever depends on them, and forgets the facts and fingerprints the pass would have
//! recorded for them, so the next pass with a readable source compares afresh. One warning per
//! kind says what was held back and why.

use super::facts::Effect;
use super::plan::{Kind, Plan};
use crate::model::Desired;
use std::collections::{BTreeMap, HashSet};

/// The kind a sub-resource fingerprint key (`emails/<uid>`, …) belongs to.
fn fingerprint_kind(key: &str) -> Option<Kind> {
    let prefix = key.split('/').next()?;
    Some(match prefix {
        "contact" => Kind::Contact,
        "emails" => Kind::Email,
        "phones" => Kind::Phone,
        "binding" => Kind::ManagingUser,
        _ => return None,
    })
}

fn effect_kind(e: &Effect) -> &str {
    match e {
        Effect::Adopt { kind, .. }
        | Effect::Password { kind, .. }
        | Effect::Added { kind, .. }
        | Effect::Removed { kind, .. } => kind,
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
        let kind = fingerprint_kind(&f.key);
        !kind.is_some_and(|k| frozen.contains_key(&k))
            && !f.needs.iter().any(|n| held_keys.contains(n))
    });
    let names: HashSet<&str> = frozen.keys().map(|k| k.type_name()).collect();
    plan.verified.retain(|e| !names.contains(effect_kind(e)));
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
