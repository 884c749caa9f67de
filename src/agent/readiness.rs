//! Readiness after a pass (issue 21 point 3): after a pass that applied changes, and after
//! each full verify, ask the target's Live API what it serves (see `explain::readiness`: a
//! handful of GETs, never per object) and record it in the status document, from which the
//! page and the `isymphony_sync_not_live_objects{kind}` metric read. Never fails a pass.

use super::status::AgentState;
use crate::config::Config;
use crate::reconcile::PassReport;

/// The check, when `r` applied changes or `full` asked for a verify, for the target `r` went to.
pub async fn after_pass(state: &AgentState, cfg: &Config, r: &PassReport, full: bool) {
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
