//! What the agent knows about itself: the status document, the pass history, the metrics.

pub mod history;
pub mod metrics;
pub mod status;
