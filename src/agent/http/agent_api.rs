//! What the agent's HTTP resources need from the running agent ([`AgentApi`]), apart from
//! the resources themselves so that the page and the plan sharing depend on it and not on
//! each other's router.

use crate::agent::state::AgentState;
use crate::config::Config;
use crate::explain::{ExplainError, Explanation, ObjectRef};
use crate::model::Kind;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why no plan could be computed; one error shared by every request that waited for it.
pub(crate) type PlanError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A boxed future returning the dry-run plan as JSON, or an error message.
pub(crate) type PlanFuture<'a> =
    Pin<Box<dyn Future<Output = Result<serde_json::Value, PlanError>> + Send + 'a>>;

/// A boxed future naming the holder of the writer lock (None: nobody holds it).
pub(crate) type HolderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, HolderError>> + Send + 'a>>;

/// A boxed future explaining one object (`--explain KIND/KEY`).
pub(crate) type ExplainFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Explanation, ExplainError>> + Send + 'a>>;

/// A boxed future listing the keys FreePBX knows for one kind.
pub(crate) type KeysFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<String>, ExplainError>> + Send + 'a>>;

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
    /// Explain one object against the current configuration (the status page's object page).
    fn explain(&self, obj: ObjectRef) -> ExplainFuture<'_>;
    /// The keys FreePBX knows for `kind` (the status page's list of a kind's objects).
    fn keys(&self, kind: Kind) -> KeysFuture<'_>;
    /// Who holds the writer lock now (the status page). Without a lock (a snapshot file as
    /// the source) nobody does.
    fn lock_holder(&self) -> HolderFuture<'_> {
        Box::pin(async { Ok(None) })
    }
}

/// [`AgentApi::explain`] for an agent running `cfg` (a copy: no lock of the agent is held while
/// it reads both sides, and it writes nothing, so passes go on beside it); `stop` ends it.
pub(crate) fn explain_with(
    cfg: Arc<Config>,
    stop: CancellationToken,
    obj: ObjectRef,
) -> ExplainFuture<'static> {
    Box::pin(async move {
        tokio::select! {
            r = crate::explain::explain(&cfg, &obj) => r,
            _ = stop.cancelled() => Err(ExplainError::ShuttingDown),
        }
    })
}

/// [`AgentApi::keys`] for an agent running `cfg`; `stop` ends it.
pub(crate) fn keys_with(
    cfg: Arc<Config>,
    stop: CancellationToken,
    kind: Kind,
) -> KeysFuture<'static> {
    Box::pin(async move {
        tokio::select! {
            r = crate::explain::keys(&cfg, kind) => r,
            _ = stop.cancelled() => Err(ExplainError::ShuttingDown),
        }
    })
}
