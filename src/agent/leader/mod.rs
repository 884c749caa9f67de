//! One writer among several agents: the election and its lock link, and who holds the lock.

pub mod election;
pub(crate) mod holder;
