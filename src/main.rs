//! `isymphony-sync`: parse the command line, set up logging, run the chosen mode.

use clap::{CommandFactory, Parser};
use isymphony_sync::config::{Config, DEFAULT_CONFIG_PATH};
use isymphony_sync::logging::{self, LogFormat};
use isymphony_sync::reconcile::cli::OutputFormat;
use isymphony_sync::reconcile::PassOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "isymphony-sync",
    version,
    about = "Keeps an iSymphony operator panel in step with FreePBX",
    long_about = "Keeps an iSymphony operator panel in step with FreePBX.\n\nWithout a mode flag \
                  it runs as the long-running agent (the systemd service)."
)]
struct Cli {
    /// Configuration file [default: /etc/isymphony-sync/config.toml].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log line format: text (no timestamps under journald) or json.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Read FreePBX once and write the snapshot as JSON to PATH (secrets as ***), then exit.
    #[arg(long, value_name = "PATH")]
    export_snapshot: Option<PathBuf>,
    /// With --export-snapshot: keep passwords and hashes in the file (always written 0600).
    #[arg(long, requires = "export_snapshot")]
    include_secrets: bool,
    /// Run only the embedded iSymphony Configuration API endpoint ([server] section, whatever
    /// `enabled` says) until SIGINT/SIGTERM. Without a configuration file it runs on the
    /// built-in defaults.
    #[arg(long)]
    serve_only: bool,
    /// Run one sync pass and exit (0 ok, 1 error).
    #[arg(long)]
    sync_now: bool,
    /// Print the plan and change nothing (0 in sync, 2 changes pending, 1 error).
    #[arg(long)]
    dry_run: bool,
    /// Plan output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Re-read every sub-resource (contacts, e-mails, phones, managing users).
    #[arg(long)]
    full: bool,
    /// Delete even when the safety valve would refuse, and send again the changes held after
    /// a licence refusal.
    #[arg(long)]
    force: bool,
    /// With --dry-run (to see) or --sync-now (to record), once, when taking over from the
    /// cxpanel module: adopt the e-mail addresses and phone numbers it posted to the users it
    /// managed, and its `default` parking lot, so that FreePBX changes replace them.
    #[arg(long)]
    adopt_cxpanel_items: bool,
    /// Check the configuration, the FreePBX database and the iSymphony API, one line per
    /// check; exit 0 only when all pass.
    #[arg(long)]
    check_config: bool,
    /// Start even when the store or the agent state is damaged: keep the damaged files beside
    /// them (NAME.damaged-TIME) and go on with what is readable. Works with every mode.
    #[arg(long)]
    repair: bool,
    /// Write the man page and shell completions into DIR (used by packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_assets: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.generate_assets {
        return report(
            generate_assets(dir)
                .map_err(|e| anyhow::anyhow!("cannot write assets to {}: {e}", dir.display())),
        );
    }
    logging::init(cli.log_format);
    isymphony_sync::integrity::set_repair(cli.repair);
    if cli.check_config {
        return ExitCode::from(isymphony_sync::check::main(&config_path(&cli)));
    }
    if let Some(out) = &cli.export_snapshot {
        return report(isymphony_sync::freepbx::export_snapshot_cli(
            &config_path(&cli),
            out,
            cli.include_secrets,
        ));
    }
    if cli.adopt_cxpanel_items && !(cli.sync_now || cli.dry_run) {
        eprintln!(
            "isymphony-sync: --adopt-cxpanel-items goes with --dry-run (to see what it adopts) \
             or --sync-now (to adopt it)"
        );
        return ExitCode::FAILURE;
    }
    if cli.sync_now || cli.dry_run {
        let opts = PassOptions {
            dry_run: cli.dry_run,
            full: cli.full,
            force: cli.force,
            adopt_cxpanel: cli.adopt_cxpanel_items,
        };
        return ExitCode::from(isymphony_sync::reconcile::cli::main_once(
            &config_path(&cli),
            opts,
            cli.output,
        ));
    }
    if cli.serve_only {
        return report(serve_only(&cli));
    }
    report(daemon(&cli))
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The long-running agent (no mode flag).
fn daemon(cli: &Cli) -> anyhow::Result<()> {
    let path = config_path(cli);
    let rt = runtime()?;
    let result = rt.block_on(isymphony_sync::agent::daemon::run(path));
    // Do not wait for stray blocking work (e.g. a DNS lookup) on the way out.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    result
}

fn serve_only(cli: &Cli) -> anyhow::Result<()> {
    let cfg = match &cli.config {
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
    // The flag itself asks for the imitation: `[server] enabled` (off by default, so that the
    // service never takes iSymphony's ports) decides only for the service and one-shot passes.
    runtime()?.block_on(async {
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

/// The man page (gzipped, as Debian wants it) and bash/zsh completions, from the clap model.
fn generate_assets(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    let file = std::fs::File::create(dir.join("isymphony-sync.1.gz"))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    gz.write_all(&man)?;
    gz.finish()?;
    for (shell, name) in [
        (clap_complete::Shell::Bash, "isymphony-sync.bash"),
        (clap_complete::Shell::Zsh, "_isymphony-sync"),
    ] {
        let mut out = std::fs::File::create(dir.join(name))?;
        clap_complete::generate(shell, &mut cmd.clone(), "isymphony-sync", &mut out);
    }
    Ok(())
}
