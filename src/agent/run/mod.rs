//! Running passes: when (the scheduler), how one pass runs and ends, on which thread, with
//! which permission to write, and what the last pass could not read.

pub mod executor;
pub mod known_gaps;
pub mod pass;
pub mod permit;
pub mod scheduler;
