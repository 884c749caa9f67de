//! `--export-snapshot PATH`: read FreePBX once, write the snapshot (secrets as `***` unless
//! `--include-secrets`), say on stderr what was written.

use isymphony_sync::config::Config;
use std::path::Path;

pub async fn run(config: &Path, out: &Path, include_secrets: bool) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let snap = isymphony_sync::freepbx::export_snapshot(&cfg, out, include_secrets).await?;
    eprintln!(
        "wrote snapshot of {} ({} extensions, {} userman users) to {}{}",
        snap.source,
        snap.users.len(),
        snap.userman_users.len(),
        out.display(),
        if include_secrets {
            ""
        } else {
            " (secrets as ***)"
        }
    );
    Ok(())
}
