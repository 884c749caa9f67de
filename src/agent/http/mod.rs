//! The agent's HTTP side: the listeners, the agent's own resources, the status page.

pub(crate) mod agent_api;
pub(crate) mod csrf;
pub(crate) mod endpoint;
#[cfg(test)]
mod fake;
pub(crate) mod page;
pub(crate) mod plan_share;
pub(crate) mod resources;
