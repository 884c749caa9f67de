//! Readiness after a pass (issue 21 point 3): after a pass that applied changes, and after
//! each full verify, ask the target's Live API what it serves (see `explain::readiness`: a
//! handful of GETs, never per object) and record it in the status document, from which the
//! page and the `isymphony_sync_not_live_objects{kind}` metric read. Never fails a pass.

use super::AgentState;
use crate::config::Config;
use crate::reconcile::PassReport;

/// The check, when `r` applied changes or `full` asked for a verify, for the target `r` went to.
pub(crate) async fn after_pass(state: &AgentState, cfg: &Config, r: &PassReport, full: bool) {
    if r.dry_run || !(r.applied > 0 || full) {
        return;
    }
    let Some(target) = &r.resolved else { return };
    let found = state.readiness.run(cfg, target).await;
    if let Some(counts) = found.counts() {
        let total: usize = counts.values().sum();
        if total > 0 {
            tracing::info!(?counts, "configured but not live on the target");
        }
    }
    state.set_readiness(found);
}

#[cfg(test)]
mod tests {
    use crate::agent::state::AgentState;
    use crate::explain::readiness::Readiness;
    use crate::model::Kind;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    #[test]
    fn known_readiness_is_a_gauge_per_kind_and_unknown_is_nan() {
        let s = AgentState::new();
        let unknown = "isymphony_sync_not_live_objects{kind=\"extension\"} NaN";
        assert!(
            s.metrics().contains(unknown),
            "not checked yet: {}",
            s.metrics()
        );
        let not_live = BTreeMap::from([
            (
                Kind::Extension,
                vec!["1001".to_string(), "1002".to_string()],
            ),
            (Kind::Queue, Vec::new()),
        ]);
        s.set_readiness(Readiness::Known {
            at: SystemTime::now(),
            not_live,
        });
        let m = s.metrics();
        assert!(
            m.contains("isymphony_sync_not_live_objects{kind=\"extension\"} 2"),
            "{m}"
        );
        assert!(
            m.contains("isymphony_sync_not_live_objects{kind=\"queue\"} 0"),
            "{m}"
        );
        let json = serde_json::to_value(s.status()).unwrap();
        assert_eq!(json["readiness"]["state"], "known");
        assert_eq!(json["readiness"]["not_live"]["extension"][1], "1002");

        s.set_readiness(Readiness::Unknown {
            at: SystemTime::now(),
            reason: "the target has no Live API".into(),
        });
        let m = s.metrics();
        assert!(m.contains(unknown), "{m}");
        assert!(
            m.contains("# TYPE isymphony_sync_not_live_objects gauge"),
            "{m}"
        );
    }
}
