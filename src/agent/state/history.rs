//! What the status page shows of the past: the last [`PASSES`] pass records, and for the two
//! charts the duration of each pass and each change-to-converged latency over a longer
//! retained history ([`POINTS`] of each). Kept in memory only: a restart starts a new history.

use super::status::PassRecord;
use crate::reconcile::PassOutcome;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Pass records kept for the table.
pub(crate) const PASSES: usize = 50;
/// Chart points kept (per chart).
pub(crate) const POINTS: usize = 500;

/// One chart point: when, and how many seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub(crate) at: SystemTime,
    pub(crate) seconds: f64,
    /// The pass result (the duration chart colours failed passes).
    pub(crate) result: PassOutcome,
}

/// The retained history (newest last).
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    pub(crate) passes: VecDeque<PassRecord>,
    pub(crate) durations: VecDeque<Point>,
    pub(crate) latencies: VecDeque<Point>,
}

fn push<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl History {
    /// Remember a finished pass and, when it converged a change, the change's latency.
    pub(crate) fn record(&mut self, rec: &PassRecord, change_latency: Option<Duration>) {
        let seconds = rec
            .finished
            .duration_since(rec.started)
            .unwrap_or_default()
            .as_secs_f64();
        let point = |seconds| Point {
            at: rec.finished,
            seconds,
            result: rec.result,
        };
        push(&mut self.durations, point(seconds), POINTS);
        if let Some(l) = change_latency {
            push(&mut self.latencies, point(l.as_secs_f64()), POINTS);
        }
        push(&mut self.passes, rec.clone(), PASSES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_within_the_caps() {
        let mut h = History::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..(POINTS as u64 + 7) {
            let rec = PassRecord {
                started: t0 + Duration::from_secs(i),
                finished: t0 + Duration::from_secs(i) + Duration::from_millis(250),
                result: PassOutcome::Changes,
                full: false,
                triggers: vec![],
                summary: format!("pass {i}"),
                applied: 0,
                failed: 0,
                requests: Default::default(),
                warnings: vec![],
                counts_by_kind: Default::default(),
                error: None,
            };
            h.record(&rec, (i % 2 == 0).then(|| Duration::from_millis(i)));
        }
        assert_eq!(h.passes.len(), PASSES);
        assert_eq!(
            h.passes.back().map(|p| p.summary.as_str()),
            Some("pass 506")
        );
        assert_eq!(
            h.passes.front().map(|p| p.summary.as_str()),
            Some("pass 457")
        );
        assert_eq!(h.durations.len(), POINTS);
        assert!((h.durations[0].seconds - 0.25).abs() < 1e-9);
        assert_eq!(h.latencies.len(), 254);
        assert!((h.latencies.back().map_or(0.0, |p| p.seconds) - 0.506).abs() < 1e-9);
    }
}
