//! Partial passes: what a pass leaves out when part of the iSymphony side could not be read.
//!
//! [`super::observe`] records the collections it could not read and the objects whose JSON it
//! could not understand ([`Gaps`], defined here so that this pure module imports nothing that
//! does I/O). The plan is computed as usual and then [`withhold`] drops every operation that
//! depends on a gap: the operations of the kinds fed by an unreadable collection (an unread
//! collection looks empty, so the plan would otherwise create duplicates or miss deletions),
//! the operations on an object left alone, and, through `needs`, every operation that needs a
//! dropped one. Everything else of the pass is applied. Which kinds
//! depend on which is [`Kind::facts`]' `reads` and `keyed_by`.

use super::plan::Plan;
use crate::model::Kind;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What a pass could not read on the iSymphony side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gaps {
    /// Kinds whose collection could not be read → the reason (method, path, status).
    pub kinds: BTreeMap<Kind, String>,
    /// Objects whose JSON could not be understood: (kind, natural key), left alone.
    pub objects: BTreeSet<(Kind, String)>,
    /// One line per gap: what failed and what is skipped because of it.
    pub warnings: Vec<String>,
    /// Each failed read by path and status, to tell whether the next pass meets the same ones.
    pub keys: BTreeSet<GapKey>,
}

/// One failed read: the path, and the HTTP status when the server answered with one (`None`:
/// no answer, a body that cannot be read, an object that does not decode).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GapKey {
    pub path: String,
    pub status: Option<u16>,
    /// A sub-resource of one object (a contact, e-mails, phones, a binding): read by a change
    /// pass only for what changed, where a collection is read by every pass.
    pub sub: bool,
}

impl GapKey {
    /// The server refused the read with a status that the same request will get again (a
    /// licence that does not cover the resource, a server without it), as opposed to a read
    /// that may work next time (no answer, a timeout, a server error, too many requests).
    pub fn is_refusal(&self) -> bool {
        matches!(self.status, Some(s) if (400..500).contains(&s) && s != 408 && s != 429)
    }
}

impl Gaps {
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty()
    }

    /// Add the failed reads of `more` (sub-resources: no kind, no object left out).
    pub fn add(&mut self, more: Gaps) {
        self.warnings.extend(more.warnings);
        self.keys.extend(more.keys);
    }
}

/// How a warning names what is skipped when the collection of `kind` cannot be read.
pub fn skipped_text(kind: Kind) -> String {
    let names: Vec<&str> = kind.fed_by_read().iter().map(|k| k.heading()).collect();
    names.join(", ").to_lowercase()
}

/// Drop from `plan` every operation that depends on a gap; returns how many were dropped.
pub fn withhold(plan: &mut Plan, gaps: &Gaps) -> usize {
    if gaps.kinds.is_empty() && gaps.objects.is_empty() {
        return 0;
    }
    let kinds: HashSet<Kind> = gaps.kinds.keys().flat_map(|k| k.fed_by_read()).collect();
    let mut dropped: HashSet<(Kind, String)> = HashSet::new();
    for (kind, key) in &gaps.objects {
        dropped.insert((*kind, key.clone()));
        for sub in kind.keyed_below() {
            dropped.insert((sub, key.clone()));
        }
    }
    let mut fps: HashSet<String> = HashSet::new();
    let before = plan.ops.len();
    // Ops are sorted by stage and `needs` point to earlier stages: one walk is transitive.
    plan.ops.retain(|op| {
        let key = (op.kind, op.key.clone());
        let drop = kinds.contains(&op.kind)
            || dropped.contains(&key)
            || op.needs.iter().any(|n| dropped.contains(n));
        if drop {
            dropped.insert(key);
            fps.extend(op.fingerprint.clone());
        }
        !drop
    });
    plan.fingerprints
        .retain(|f| !fps.contains(&f.key) && !f.needs.iter().any(|n| dropped.contains(n)));
    plan.verified.retain(|e| !kinds.contains(&e.kind()));
    for k in &kinds {
        plan.managed_counts.remove(k);
    }
    before - plan.ops.len()
}
