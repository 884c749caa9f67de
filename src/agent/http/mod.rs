//! The agent's HTTP side: the listeners, the agent's own resources, the status page.

pub mod csrf;
pub mod endpoint;
pub mod page;
pub mod plan_share;
pub mod resources;
