//! `--serve-only`: only the embedded iSymphony Configuration API endpoint (and, with `[live]
//! backend`, the Live API), until
//! SIGINT/SIGTERM. Without `--config` and without the default file it runs on the built-in
//! defaults.

use isymphony_sync::config::{Config, DEFAULT_CONFIG_PATH};
use std::path::{Path, PathBuf};

pub async fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = match config {
        Some(path) => Config::load(path)?,
        None => {
            let path = PathBuf::from(DEFAULT_CONFIG_PATH);
            if path.exists() {
                Config::load(&path)?
            } else {
                tracing::info!(
                    "no configuration file at {DEFAULT_CONFIG_PATH}; running on the built-in defaults"
                );
                Config::default()
            }
        }
    };
    // The flag itself asks for the embedded endpoint: `[server] enabled` (off by default, so that the
    // service never takes iSymphony's ports) decides only for the service and one-shot passes.
    let live = isymphony_sync::live::Live::start(&cfg).await?;
    let handle = isymphony_sync::server::start_live(&cfg.server, None, None, live).await?;
    tracing::info!(base_url = %handle.base_url(), "serving until SIGINT/SIGTERM");
    wait_for_signal().await?;
    // What it served, for an administrator comparing clients (and the cxpanel side-by-side).
    let s = handle.stats();
    tracing::info!(
        requests = s.total(),
        get = s.get,
        post = s.post,
        put = s.put,
        delete = s.delete,
        "signal received, shutting down"
    );
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
