//! Running passes: when (the scheduler), how one pass runs and ends, on which thread, with
//! which permission to write, and what the last pass could not read.

pub(crate) mod executor;
pub(crate) mod known_gaps;
pub(crate) mod pass;
pub(crate) mod permit;
pub(crate) mod scheduler;
