//! Permission to write, asked by [`apply`](super::apply) before each write stage of a pass.
//!
//! The daemon's passes hold it only while this agent holds the writer lock (see
//! `agent::leader`) and no shutdown asked them to stop; `--sync-now` passes have none. A
//! refused confirmation stops the pass before the stage, unapplied; a revoked permission seen
//! between the operations of a stage stops the operations not yet started.

use futures::future::BoxFuture;
use std::sync::Arc;

/// Why a pass may not, or no longer, write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Denied {
    /// The pass was asked to stop (a shutdown): why, as the daemon said it.
    #[error("{0}")]
    Stopping(String),
    /// The permission was lost or could not be confirmed (the writer lock's error).
    #[error(transparent)]
    Lock(Arc<dyn std::error::Error + Send + Sync>),
}

/// May this pass still write?
pub trait WriteGate: Send + Sync {
    /// Confirm with a round trip (the lock on its own connection) that the pass may write the
    /// next stage. `Err` says why not, for the log and the status.
    fn confirm(&self) -> BoxFuture<'_, Result<(), Denied>>;
    /// A check without I/O, asked once right before each operation starts: `Some(why)` once
    /// the permission is known to be gone (the lock connection failed, a shutdown asked the
    /// pass to stop).
    fn revoked(&self) -> Option<Denied>;
}
