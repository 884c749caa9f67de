//! `isymphony-sync`: parse the command line, set up logging, run the chosen mode.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "isymphony-sync",
    version,
    about = "Keeps an iSymphony operator panel in step with FreePBX"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, value_name = "PATH", default_value = isymphony_sync::config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Read FreePBX once and write the snapshot as JSON to PATH (secrets as ***), then exit.
    #[arg(long, value_name = "PATH")]
    export_snapshot: Option<PathBuf>,
    /// With --export-snapshot: keep passwords and hashes in the file (written mode 0600).
    #[arg(long, requires = "export_snapshot")]
    include_secrets: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(out) = &cli.export_snapshot {
        return report(isymphony_sync::freepbx::export_snapshot_cli(
            &cli.config,
            out,
            cli.include_secrets,
        ));
    }
    ExitCode::SUCCESS
}

/// Print a failure as one line on stderr and exit 1.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isymphony-sync: {e:#}");
            ExitCode::FAILURE
        }
    }
}
