//! No mode flag: the long-running agent (the systemd service) until SIGTERM/SIGINT.

use std::path::PathBuf;

pub async fn run(config: PathBuf) -> anyhow::Result<()> {
    isymphony_sync::agent::daemon::run(config).await
}
