//! How a pass starts: the agent state it works with (its store, scoped to the pass's target,
//! rows of an older scope moved over, and the ownership it knows of), opened on a blocking
//! thread while iSymphony's top level is read.

use super::observe::Gaps;
use super::source::Target;
use super::state::{self, StateStore};
use super::ReconcileError;
use super::{read_top, reuse, top_error, ManagedItem, Observed, Ownership, PassOptions};
use crate::api::client::Client;
use crate::config::Config;
use crate::model::Desired;

/// What a pass starts from: its iSymphony client, the agent state and the ownership it knows
/// of, and iSymphony's top level as read.
pub(super) struct Start {
    pub client: Client,
    pub store: Option<StateStore>,
    pub own: Ownership,
    pub top: (Observed, Gaps),
}

/// The agent state opens on a blocking thread while iSymphony's top level is read (the
/// daemon's read ahead, `ahead`, when it read this pass's top level). A state error comes
/// first, as when the two were one after the other.
pub(super) async fn start(
    cfg: &Config,
    opts: &PassOptions,
    target: &Target,
    desired: &Desired,
    managed_items: &[ManagedItem],
    ahead: Option<reuse::Ahead>,
) -> Result<Start, ReconcileError> {
    let opening = open_beside(cfg, opts, target, managed_items);
    let (client, top) = reuse::client_and_top(cfg, target, desired, ahead);
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            opening.await?;
            return Err(e);
        }
    };
    let top = match top {
        Some(read) => read.map_err(top_error),
        None => read_top(&client, desired).await,
    };
    let (store, own) = opening.await?;
    Ok(Start {
        client,
        store,
        own,
        top: top?,
    })
}

/// [`open`], started now on a blocking thread; await the result. A pass reads iSymphony's
/// top level meanwhile: a new state file costs several fsyncs, a first sync's longest wait
/// before its first request.
fn open_beside(
    cfg: &Config,
    opts: &PassOptions,
    target: &Target,
    managed_items: &[ManagedItem],
) -> impl std::future::Future<Output = Result<(Option<StateStore>, Ownership), ReconcileError>> {
    let (cfg, opts, target, items) = (cfg.clone(), *opts, target.clone(), managed_items.to_vec());
    let dir = cfg.state_dir().to_path_buf();
    let opening = tokio::task::spawn_blocking(move || open(&cfg, &opts, &target, &items));
    async move {
        opening.await.unwrap_or_else(|e| {
            Err(ReconcileError::State(state::StateError {
                path: dir,
                message: format!("opening it failed: {e}"),
            }))
        })
    }
}

/// The agent's state store (none for a dry run) and the ownership it knows of.
fn open(
    cfg: &Config,
    opts: &PassOptions,
    target: &Target,
    managed_items: &[ManagedItem],
) -> Result<(Option<StateStore>, Ownership), ReconcileError> {
    let scope = target.scope();
    let store = if opts.dry_run {
        None
    } else {
        Some(StateStore::open_keeping(
            cfg.state_dir(),
            &scope,
            opts.keep_open,
        )?)
    };
    let mut store = store;
    if let (Some(s), Some(old)) = (store.as_mut(), scope_with_credentials(cfg, target)) {
        s.move_scope(&old)?;
    }
    let known = match &mut store {
        Some(s) => s.load(),
        None => StateStore::load_read_only(cfg.state_dir(), &scope),
    }?;
    let own = Ownership::new(
        &target.core_server,
        cfg.sync.clean_unknown_items,
        known,
        managed_items,
    );
    Ok((store, own))
}

/// The scope earlier versions used when `[isymphony] url` held credentials (the URL as
/// written); its rows move to the clean scope (see `state::scope_move`).
fn scope_with_credentials(cfg: &Config, target: &Target) -> Option<String> {
    let raw = cfg.isymphony.url.as_deref()?;
    crate::text::split_userinfo(raw).1?;
    Some(format!(
        "{}@{}",
        target.core_server,
        raw.trim_end_matches('/')
    ))
}
