//! `isymphony-sync`: parse the command line, set up logging, run the chosen mode.

use clap::Parser;
use isymphony_sync::config::{Config, DEFAULT_CONFIG_PATH};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "isymphony-sync",
    version,
    about = "Keeps an iSymphony operator panel in step with FreePBX"
)]
struct Cli {
    /// Configuration file [default: /etc/isymphony-sync/config.toml].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run only the embedded iSymphony Configuration API endpoint ([server] section) until
    /// SIGINT/SIGTERM. Without a configuration file it runs on the built-in defaults.
    #[arg(long)]
    serve_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isymphony-sync: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    match &cli.config {
        Some(path) => Ok(Config::load(path)?),
        None => {
            let path = PathBuf::from(DEFAULT_CONFIG_PATH);
            if cli.serve_only && !path.exists() {
                tracing::info!(
                    "no configuration file at {DEFAULT_CONFIG_PATH}; running on the built-in defaults"
                );
                return Ok(Config::default());
            }
            Ok(Config::load(&path)?)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = load_config(&cli)?;
    if !cli.serve_only {
        anyhow::bail!("no mode selected: this version only supports --serve-only (see --help)");
    }
    if !cfg.server.enabled {
        anyhow::bail!("--serve-only needs the embedded endpoint, but [server] enabled = false");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let handle = isymphony_sync::server::start(&cfg.server, None).await?;
        tracing::info!(base_url = %handle.base_url(), "serving until SIGINT/SIGTERM");
        wait_for_signal().await?;
        tracing::info!("signal received, shutting down");
        handle.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
