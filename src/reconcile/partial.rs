//! Partial passes: what a pass leaves out when part of the iSymphony side could not be read.
//!
//! [`super::observe`] records the collections it could not read and the objects whose JSON it
//! could not understand ([`Gaps`], defined here so that this pure module imports nothing that
//! does I/O). The plan is computed as usual and then [`withhold`] drops every operation that
//! depends on a gap: the operations of the kinds fed by an unreadable collection (an unread
//! collection looks empty, so the plan would otherwise create duplicates or miss deletions),
//! the operations on an object left alone, and, through `needs`, every operation that needs a
//! dropped one. Everything else of the pass is applied.

use super::plan::{Kind, Plan};
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

/// The kinds of operations that need the collection of `kind` to have been read.
fn dependents(kind: Kind) -> &'static [Kind] {
    match kind {
        Kind::Extension => &[Kind::Extension, Kind::ManagingUser],
        Kind::User => &[
            Kind::User,
            Kind::Contact,
            Kind::Email,
            Kind::Phone,
            Kind::ManagingUser,
        ],
        Kind::CoreServer => &[Kind::CoreServer],
        Kind::AsteriskSettings => &[Kind::AsteriskSettings],
        Kind::VoicemailAgent => &[Kind::VoicemailAgent],
        Kind::VoicemailAgentIdentifier => &[Kind::VoicemailAgentIdentifier],
        Kind::RecordingAgent => &[Kind::RecordingAgent],
        Kind::PbxServer => &[Kind::PbxServer],
        Kind::Administrator => &[Kind::Administrator],
        Kind::Contact => &[Kind::Contact],
        Kind::Email => &[Kind::Email],
        Kind::Phone => &[Kind::Phone],
        Kind::ManagingUser => &[Kind::ManagingUser],
        Kind::Queue => &[Kind::Queue],
        Kind::ConferenceRoom => &[Kind::ConferenceRoom],
        Kind::ParkingLot => &[Kind::ParkingLot],
    }
}

/// How a warning names what is skipped when the collection of `kind` cannot be read.
pub fn skipped_text(kind: Kind) -> String {
    let names: Vec<&str> = dependents(kind).iter().map(|k| k.heading()).collect();
    names.join(", ").to_lowercase()
}

/// Sub-operations keyed by the natural key of their owner (contact/e-mails/phones by username,
/// the binding by extension number): left alone with the owner.
fn owned_by(kind: Kind) -> &'static [Kind] {
    match kind {
        Kind::User => &[Kind::Contact, Kind::Email, Kind::Phone],
        Kind::Extension => &[Kind::ManagingUser],
        _ => &[],
    }
}

/// Drop from `plan` every operation that depends on a gap; returns how many were dropped.
pub fn withhold(plan: &mut Plan, gaps: &Gaps) -> usize {
    if gaps.kinds.is_empty() && gaps.objects.is_empty() {
        return 0;
    }
    let kinds: HashSet<Kind> = gaps
        .kinds
        .keys()
        .flat_map(|k| dependents(*k).iter().copied())
        .collect();
    let mut dropped: HashSet<(Kind, String)> = HashSet::new();
    for (kind, key) in &gaps.objects {
        dropped.insert((*kind, key.clone()));
        for sub in owned_by(*kind) {
            dropped.insert((*sub, key.clone()));
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
