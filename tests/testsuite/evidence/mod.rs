//! Whole syncs of 1,000 extensions under faults, SIGKILL at random moments, and with known
//! passwords everywhere: converged, nothing twice, nothing leaked.

mod crash;
mod faults;
mod secrets;
