//! What a daemon pass takes over from the previous one on the iSymphony side (see
//! [`crate::kept`]): the API client with its keep-alive connections, and a read of the top
//! level started while FreePBX is still being read.
//!
//! The read ahead goes to the previous pass's target for the previous pass's core server and
//! agents. It is used only when this pass's FreePBX read resolves the same client settings and
//! names the same top-level objects ([`TopRead`]), and then its outcome is this pass's read,
//! failure included; otherwise the pass reads again as it always did. Both sides are still
//! read afresh by every pass, only at the same time: at 1,000 extensions the top level takes
//! a fifth of a pass that follows one change, and FreePBX's read two fifths.

use super::observe::{self, Gaps, TopRead};
use super::source::Target;
use super::{make_client, Observed, ReconcileError};
use crate::api::client::{ApiError, Client};
use crate::config::Config;
use crate::model::Desired;

/// The client a pass left, what it was built from and what the pass read at the top level.
pub(super) struct Kept {
    key: String,
    top: TopRead,
    client: Client,
}

static KEPT: crate::kept::Slot<(), Kept> = crate::kept::Slot::new();

/// A read of the top level.
pub(super) type TopOutcome = Result<(Observed, Gaps), ApiError>;

/// The kept client and its read of the top level (on the kept target).
pub(super) struct Ahead {
    kept: Kept,
    read: TopOutcome,
}

/// Read the top level with the kept client, if a pass left one.
pub(super) async fn read_ahead() -> Option<Ahead> {
    let mut kept = KEPT.take(&())?;
    // This pass counts its requests from here, the read ahead included.
    kept.client = kept.client.with_new_counts();
    let read = observe::observe_top_of(&kept.client, &kept.top).await;
    Some(Ahead { kept, read })
}

/// Drop the kept client (its connections close).
pub(super) fn release() {
    KEPT.clear();
}

/// Keep `client` for the next pass, with what it was built from and read.
pub(super) fn keep(cfg: &Config, target: &Target, desired: &Desired, client: Client) {
    let kept = Kept {
        key: client_key(cfg, target),
        top: TopRead::of(desired),
        client,
    };
    KEPT.put((), kept);
}

/// This pass's client (the kept one when it was built from the same settings; its counts
/// include the read ahead, used or not) and, when the read ahead was of this pass's top level,
/// its outcome.
pub(super) fn client_and_top(
    cfg: &Config,
    target: &Target,
    desired: &Desired,
    ahead: Option<Ahead>,
) -> (Result<Client, ReconcileError>, Option<TopOutcome>) {
    let Some(Ahead { kept, read }) = ahead else {
        return (make_client(cfg, target), None);
    };
    if kept.key != client_key(cfg, target) {
        return (make_client(cfg, target), None);
    }
    // A failed read of the same top level is this pass's failure: not read a second time
    // (an unreachable server would cost its retries twice).
    let used = (kept.top == TopRead::of(desired)).then_some(read);
    (Ok(kept.client), used)
}

/// What [`make_client`] builds a client from, as one digest: the target, `[isymphony]` and
/// `[sync] concurrency`, and the CA file's size and modification time (a replaced certificate
/// gets a new client).
fn client_key(cfg: &Config, target: &Target) -> String {
    let ca = cfg.isymphony.ca_file.as_ref().map(|p| {
        let m = std::fs::metadata(p).ok();
        (
            p.clone(),
            m.as_ref().map(|m| m.len()),
            m.and_then(|m| m.modified().ok()),
        )
    });
    let i = &cfg.isymphony;
    let text = format!(
        "{:?}",
        (
            (&target.url, &target.username, target.password.expose()),
            (i.timeout, i.tls_verify, ca, i.max_response_bytes),
            i.agent_token.as_ref().map(|t| t.expose()),
            cfg.sync.concurrency,
        )
    );
    crate::digest::sha1_hex(&text)
}
