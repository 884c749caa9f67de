//! What the agent's HTTP resources need from the running agent ([`AgentApi`]), apart from
//! the resources themselves so that the page and the plan sharing depend on it and not on
//! each other's router.

use crate::agent::state::AgentState;
use std::future::Future;
use std::pin::Pin;

/// Why no plan could be computed; one error shared by every request that waited for it.
pub(crate) type PlanError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A boxed future returning the dry-run plan as JSON, or an error message.
pub(crate) type PlanFuture<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, PlanError>> + Send + 'a>>;

/// A boxed future naming the holder of the writer lock (None: nobody holds it).
pub(crate) type HolderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, HolderError>> + Send + 'a>>;

/// Why the holder of the writer lock could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HolderError {
    #[error(transparent)]
    Config(#[from] crate::freepbx::FreepbxError),
    #[error("cannot ask MariaDB who holds the lock: {0}")]
    Db(#[from] mysql_async::Error),
}

/// What the resources need from the running agent.
pub(crate) trait AgentApi: Send + Sync + 'static {
    /// The shared status and metrics.
    fn state(&self) -> &AgentState;
    /// Ask for a pass (coalesced with other triggers).
    fn trigger_sync(&self, full: bool);
    /// Compute the current dry-run plan.
    fn plan(&self) -> PlanFuture<'_>;
    /// Who holds the writer lock now (the status page). Without a lock (a snapshot file as
    /// the source) nobody does.
    fn lock_holder(&self) -> HolderFuture<'_> {
        Box::pin(async { Ok(None) })
    }
}
