//! The safety valve, per kind.
//!
//! A pass may not delete more than `[sync] max_delete_fraction` of the objects of one kind
//! that the agent manages. The valve applies to a kind only when the agent manages at least
//! `[sync] valve_min_managed` objects of it: deleting the only queue, the one parking lot or the
//! old PBX connection after `asterisk_host` changed is an ordinary change, not an accident. When
//! the valve refuses a kind, only that kind's deletions (and operations that need them) are
//! withheld; everything else of the pass is applied, and the pass reports the refusal.
//!
//! E-mail addresses and phone numbers are kinds of their own here: a voicemail.conf that reads
//! empty must not strip every address the agent added. Their denominator is what the agent's
//! state says it added (sub-items are read only for users whose FreePBX side changed).

use super::ownership::Ownership;
use super::plan::{Action, Plan};
use crate::model::Kind;
use std::collections::BTreeMap;

/// The valve withheld deletions (the text of [`describe`]): a result of the pass, which applied
/// everything else; front ends report it as an error with this advice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("safety valve refused: {0} (those deletions were withheld, everything else was applied; check FreePBX, then run --sync-now --force once if the deletions are right)")]
pub struct Refused(pub String);

/// One kind whose deletions the valve withholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: Kind,
    /// Deletions the plan holds for this kind.
    pub deletes: usize,
    /// Objects of this kind the agent manages.
    pub managed: usize,
    /// `would delete 3 of 4 managed extension objects (more than 50%)`.
    pub message: String,
}

/// Record the managed sub-items (e-mails, phones: guarded kinds keyed by their owner) the
/// state store knows in `plan`, so that [`check`] has a denominator for them.
pub fn count_sub_items(plan: &mut Plan, own: &Ownership) {
    let sub_items = Kind::all().filter(|k| k.guarded() && k.facts().keyed_by.is_some());
    for kind in sub_items {
        let n = own.added_total(kind);
        if n > 0 {
            plan.managed_counts.insert(kind, n);
        }
    }
}

/// The kinds whose deletions exceed `max_fraction` of their managed objects, among kinds with
/// at least `min_managed` managed objects.
pub fn check(plan: &Plan, max_fraction: f64, min_managed: usize) -> Vec<Refusal> {
    let mut deletes: BTreeMap<Kind, usize> = BTreeMap::new();
    for op in &plan.ops {
        if op.action == Action::Delete && op.kind.guarded() {
            *deletes.entry(op.kind).or_default() += 1;
        }
    }
    deletes
        .into_iter()
        .filter_map(|(kind, n)| {
            let managed = plan.managed_counts.get(&kind).copied().unwrap_or(n).max(n);
            let too_many = n as f64 > max_fraction * managed as f64;
            (managed >= min_managed.max(1) && too_many).then(|| Refusal {
                kind,
                deletes: n,
                managed,
                message: format!(
                    "would delete {n} of {managed} managed {} objects (more than {:.0}%)",
                    kind.label(),
                    max_fraction * 100.0
                ),
            })
        })
        .collect()
}

/// The report text of refusals: each kind's message, joined.
pub fn describe(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| r.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::{Method, Op, Request};

    fn del(kind: Kind, key: &str) -> Op {
        Op {
            action: Action::Delete,
            kind,
            key: key.into(),
            label: None,
            changes: Vec::new(),
            stage: 7,
            request: Request {
                method: Method::Delete,
                path: format!("x/{key}"),
                body: None,
                confirm: None,
            },
            effects: Vec::new(),
            needs: Vec::new(),
            fingerprint: None,
        }
    }

    fn plan(ops: Vec<Op>, managed: &[(Kind, usize)]) -> Plan {
        Plan {
            ops,
            managed_counts: managed.iter().copied().collect(),
            ..Plan::default()
        }
    }

    #[test]
    fn small_kinds_are_not_guarded() {
        // The only queue, the only parking lot, the old PBX connection: all go through.
        let p = plan(
            vec![
                del(Kind::Queue, "400"),
                del(Kind::ParkingLot, "70"),
                del(Kind::PbxServer, "old-host"),
            ],
            &[
                (Kind::Queue, 1),
                (Kind::ParkingLot, 1),
                (Kind::PbxServer, 1),
            ],
        );
        assert!(check(&p, 0.5, 4).is_empty());
        // With the old behaviour (no minimum) every one of them was refused.
        assert_eq!(check(&p, 0.5, 1).len(), 3);
    }

    #[test]
    fn the_minimum_is_inclusive_and_per_kind() {
        let ops = vec![
            del(Kind::Extension, "1"),
            del(Kind::Extension, "2"),
            del(Kind::Extension, "3"),
            del(Kind::Queue, "400"),
            del(Kind::Queue, "401"),
        ];
        let p = plan(ops, &[(Kind::Extension, 4), (Kind::Queue, 3)]);
        let r = check(&p, 0.5, 4);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(
            (r[0].kind, r[0].deletes, r[0].managed),
            (Kind::Extension, 3, 4)
        );
        assert!(r[0].message.contains("3 of 4 managed extension"), "{r:?}");
        assert!(check(&p, 0.5, 5).is_empty());
        assert_eq!(check(&p, 0.5, 3).len(), 2);
    }

    #[test]
    fn e_mail_addresses_are_a_guarded_kind() {
        let ops: Vec<Op> = (0..6).map(|i| del(Kind::Email, &format!("u{i}"))).collect();
        let p = plan(ops, &[(Kind::Email, 6)]);
        let r = check(&p, 0.5, 4);
        assert_eq!(r.len(), 1);
        assert!(r[0].message.contains("6 of 6 managed e-mail"), "{r:?}");
    }
}
