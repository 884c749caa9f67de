//! What the last pass could not read on the iSymphony side, so that a resource iSymphony refuses
//! on every request (a licence that does not cover queues, say) does not keep the daemon busy.
//!
//! Such a refusal makes every pass partial. Retried with backoff like any failure, it would
//! read both sides every `retry_backoff_max` forever and log the same warnings each time. So a
//! partial pass that meets exactly the refusals (paths and statuses) of the pass before, and had
//! nothing else fail, is settled: the next change or the periodic verify runs the next pass. A
//! new or different refusal is retried once with backoff (it may be passing), and its warnings
//! are logged when the set appears or changes; while it stays the same they go to debug. A
//! change pass reads only the sub-resources of what changed, so the refused sub-resources of
//! other objects carry over from the last pass; collections are read by every pass. The status and the metrics show the unreadable resources on every pass.

use crate::reconcile::observe::GapKey;
use crate::reconcile::PassReport;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// How a pass's unreadable resources compare with the last pass's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The same set (also: both empty).
    Same,
    /// A set that appeared or is different.
    Changed,
    /// Everything is readable again.
    Cleared,
    /// The pass stopped before it read everything: it says nothing about the set.
    Unknown,
}

/// The unreadable set of the last pass that read the iSymphony side (shared by the passes).
#[derive(Debug, Default)]
pub(crate) struct KnownGaps(Mutex<BTreeSet<GapKey>>);

impl KnownGaps {
    /// Compare `r`'s unreadable resources with the last ones and remember them. `full`: the
    /// pass re-read every sub-resource (else it read only those of what changed).
    pub(crate) fn record(&self, r: &PassReport, full: bool) -> Change {
        let keys = &r.unreadable_keys;
        // A pass whose operations failed may have stopped before reading the collections
        // (creating the core server failed): only what it did read counts then.
        if keys.is_empty() && r.failed > 0 {
            return Change::Unknown;
        }
        let mut last = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // A change pass reads the sub-resources of what changed only: the refused ones of
        // other objects (a contact of a user it did not read) are still as they were.
        let seen: BTreeSet<GapKey> = if full {
            keys.clone()
        } else {
            keys.iter()
                .chain(last.iter().filter(|k| k.sub))
                .cloned()
                .collect()
        };
        if *last == seen {
            return Change::Same;
        }
        let empty = seen.is_empty();
        let was = std::mem::replace(&mut *last, seen);
        if empty && !was.is_empty() {
            Change::Cleared
        } else {
            Change::Changed
        }
    }
}

/// Every unreadable resource of `r` was refused with a status the same request gets again.
fn refusals_only(r: &PassReport) -> bool {
    !r.unreadable_keys.is_empty() && r.unreadable_keys.iter().all(GapKey::is_refusal)
}

/// The pass is partial only because of refusals, the same as the last pass's: it is settled
/// like a success (no retry with backoff).
pub(crate) fn settles(r: &PassReport, change: Change) -> bool {
    change == Change::Same
        && refusals_only(r)
        && r.failed == 0
        && r.errors.is_empty()
        && r.refused.is_none()
}

/// Log `r`'s unreadable resources: warn when the set appeared or changed, debug while it stays
/// the same; one line when everything is readable again.
pub(crate) fn log(r: &PassReport, change: Change) {
    match change {
        Change::Changed => {
            for u in &r.unreadable {
                tracing::warn!("{u}");
            }
        }
        Change::Same | Change::Unknown => {
            for u in &r.unreadable {
                tracing::debug!("still unreadable: {u}");
            }
        }
        Change::Cleared => tracing::info!("every iSymphony resource is readable again"),
    }
}

/// What the status lists as unreadable: when iSymphony refused every one of them, each says
/// what the agent does about it.
pub(crate) fn for_status(r: &PassReport) -> Vec<String> {
    if !refusals_only(r) {
        return r.unreadable.clone();
    }
    r.unreadable
        .iter()
        .map(|u| {
            format!("{u}; the agent leaves that alone and reads it again on the next change or the periodic verify")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn report(gaps: &[(&str, Option<u16>)]) -> PassReport {
        let mut r = PassReport::new(SystemTime::now(), false);
        for (path, status) in gaps {
            r.unreadable.push(format!("GET {path}: {status:?}"));
            r.unreadable_keys.insert(GapKey {
                path: path.to_string(),
                status: *status,
                sub: path.ends_with("/contact"),
            });
        }
        r
    }

    #[test]
    fn the_same_refusal_twice_settles_a_new_one_does_not() {
        let k = KnownGaps::default();
        let q = report(&[("asterisk/c/queues", Some(403))]);
        assert_eq!(k.record(&q, true), Change::Changed);
        assert!(!settles(&q, Change::Changed), "a new refusal is retried");
        assert_eq!(k.record(&q, true), Change::Same);
        assert!(settles(&q, Change::Same));
        let both = report(&[
            ("asterisk/c/queues", Some(403)),
            ("asterisk/c/x", Some(404)),
        ]);
        assert_eq!(k.record(&both, true), Change::Changed);
        assert_eq!(k.record(&both, true), Change::Same);
        // Another status on the same path is another refusal.
        let other = report(&[
            ("asterisk/c/queues", Some(401)),
            ("asterisk/c/x", Some(404)),
        ]);
        assert_eq!(k.record(&other, true), Change::Changed);
        assert_eq!(k.record(&report(&[]), true), Change::Cleared);
        assert_eq!(k.record(&report(&[]), true), Change::Same);
        assert!(!settles(&report(&[]), Change::Same), "nothing to settle");
    }

    #[test]
    fn what_may_pass_or_another_failure_is_never_settled() {
        for status in [None, Some(500), Some(503), Some(429), Some(408)] {
            let r = report(&[("asterisk/c/queues", status)]);
            assert!(!settles(&r, Change::Same), "{status:?}");
            assert_eq!(for_status(&r), r.unreadable, "{status:?}");
        }
        let mut r = report(&[("asterisk/c/queues", Some(403))]);
        r.failed = 1;
        r.errors.push("POST x: HTTP 500".into());
        assert!(!settles(&r, Change::Same));
        let mut r = report(&[("asterisk/c/queues", Some(403))]);
        r.refused = Some("valve".into());
        assert!(!settles(&r, Change::Same));
    }

    #[test]
    fn a_pass_that_may_not_have_read_everything_changes_nothing() {
        let k = KnownGaps::default();
        let q = report(&[("asterisk/c/queues", Some(403))]);
        k.record(&q, true);
        let mut failed = report(&[]);
        failed.failed = 1;
        assert_eq!(k.record(&failed, true), Change::Unknown);
        assert_eq!(k.record(&q, true), Change::Same);
    }

    #[test]
    fn a_refusal_in_the_status_says_what_the_agent_does() {
        let r = report(&[("asterisk/c/queues", Some(403))]);
        let s = for_status(&r);
        assert!(s[0].starts_with(&r.unreadable[0]), "{s:?}");
        assert!(
            s[0].ends_with("reads it again on the next change or the periodic verify"),
            "{s:?}"
        );
    }

    #[test]
    fn a_change_pass_with_fewer_sub_resource_refusals_says_nothing_new() {
        let k = KnownGaps::default();
        let a = ("asterisk/c/users/u1/contact", Some(403));
        let b = ("asterisk/c/users/u2/contact", Some(403));
        let both = report(&[a, b]);
        assert_eq!(k.record(&both, true), Change::Changed);
        assert_eq!(k.record(&both, true), Change::Same);
        // A change pass that read only u1: the same refusal, settled, no new warning.
        let one = report(&[a]);
        assert_eq!(k.record(&one, false), Change::Same);
        assert!(settles(&one, Change::Same));
        // One that read neither: nothing is cleared.
        assert_eq!(k.record(&report(&[]), false), Change::Same);
        // The set is still both: the next full pass meets it again.
        assert_eq!(k.record(&both, true), Change::Same);
        // A new refusal in a change pass is new.
        let c = report(&[a, ("asterisk/c/users/u3/contact", Some(403))]);
        assert_eq!(k.record(&c, false), Change::Changed);
        // A full pass reads everything: fewer is cleared or changed.
        assert_eq!(k.record(&report(&[]), true), Change::Cleared);
        // A collection is read by every pass: its refusal gone from a change pass is gone.
        let queues = report(&[("asterisk/c/queues", Some(403))]);
        assert_eq!(k.record(&queues, true), Change::Changed);
        assert_eq!(k.record(&report(&[]), false), Change::Cleared);
    }
}
