//! What the agent knows about itself: the status document, the pass history, the metrics.

pub(crate) mod history;
pub(crate) mod metrics;
pub(crate) mod readiness;
pub mod status;
