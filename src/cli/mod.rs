//! The front end: the command line, the one Tokio runtime, and everything the program prints.
//!
//! `main` parses [`Cli`], and [`run`] maps its one mode to the module that runs it:
//! [`once`] (`--sync-now`, `--dry-run`), [`check`] (`--check-config`), [`export`]
//! (`--export-snapshot`), [`serve`] (`--serve-only`), [`service`] (no mode: the agent) and
//! [`assets`] (`--generate-assets`, for packaging) and [`explain`] (`--explain KIND/KEY`). Modes that exclude each other are a
//! usage error from clap (exit 2) rather than one of them silently winning; `--dry-run`
//! together with `--sync-now` stays a dry run, as it always was. The library returns reports
//! and errors; only this module writes to stdout and stderr (logs go through `tracing`).

mod assets;
mod check;
mod explain;
mod export;
mod once;
mod progress;
mod serve;
mod service;

use clap::Parser;
use isymphony_sync::config::DEFAULT_CONFIG_PATH;
use isymphony_sync::logging::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

/// Plan output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Parser)]
// `--sync-now` and `--dry-run` may go together (a dry run); either one is a pass.
#[command(group = clap::ArgGroup::new("pass").args(["sync_now", "dry_run"]).multiple(true))]
#[command(
    name = "isymphony-sync",
    version,
    about = "Keeps an iSymphony operator panel in step with FreePBX",
    long_about = "Keeps an iSymphony operator panel in step with FreePBX.\n\nWithout a mode flag \
                  it runs as the long-running agent (the systemd service)."
)]
pub struct Cli {
    /// Configuration file [default: /etc/isymphony-sync/config.toml].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log line format: text (no timestamps under journald) or json.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Read FreePBX once and write the snapshot as JSON to PATH (secrets as ***), then exit.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["sync_now", "dry_run"])]
    export_snapshot: Option<PathBuf>,
    /// With --export-snapshot: keep passwords and hashes in the file (always written 0600).
    #[arg(long, requires = "export_snapshot")]
    include_secrets: bool,
    /// Run only the embedded iSymphony Configuration API endpoint ([server] section, whatever
    /// `enabled` says) until SIGINT/SIGTERM. Without a configuration file it runs on the
    /// built-in defaults.
    #[arg(
        long,
        conflicts_with_all = ["sync_now", "dry_run", "check_config", "export_snapshot"]
    )]
    serve_only: bool,
    /// Run one sync pass and exit (0 ok, 1 error).
    #[arg(long)]
    sync_now: bool,
    /// Print the plan and change nothing (0 in sync, 2 changes pending, 1 error).
    #[arg(long)]
    dry_run: bool,
    /// Explain one object (extension/1001, user/alice, queue/400, conference_room/8000,
    /// parking_lot/default, administrator/admin) from FreePBX to live in iSymphony; writes
    /// nothing (0 in sync and live, 2 pending or not live, 1 unknown object or error).
    #[arg(
        long,
        value_name = "KIND/KEY",
        conflicts_with_all = ["sync_now", "dry_run", "check_config", "export_snapshot", "serve_only"]
    )]
    explain: Option<String>,
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
    #[arg(long, requires = "pass")]
    adopt_cxpanel_items: bool,
    /// Check the configuration, the FreePBX database and the iSymphony API, one line per
    /// check; exit 0 only when all pass.
    #[arg(long, conflicts_with_all = ["sync_now", "dry_run", "export_snapshot"])]
    check_config: bool,
    /// Start even when the store or the agent state is damaged: keep the damaged files beside
    /// them (NAME.damaged-TIME) and go on with what is readable. Works with every mode.
    #[arg(long)]
    repair: bool,
    /// Write the man page and shell completions into DIR (used by packaging).
    #[arg(
        long,
        value_name = "DIR",
        hide = true,
        conflicts_with_all = ["sync_now", "dry_run", "check_config", "export_snapshot", "serve_only"]
    )]
    generate_assets: Option<PathBuf>,
}

/// The one thing a run of the program does.
enum Mode {
    Check,
    Explain(String),
    Export { out: PathBuf, include_secrets: bool },
    Once(once::Args),
    Serve,
    Service,
}

impl Cli {
    fn mode(&self) -> Mode {
        if self.check_config {
            Mode::Check
        } else if let Some(what) = &self.explain {
            Mode::Explain(what.clone())
        } else if let Some(out) = &self.export_snapshot {
            Mode::Export {
                out: out.clone(),
                include_secrets: self.include_secrets,
            }
        } else if self.sync_now || self.dry_run {
            Mode::Once(once::Args {
                opts: isymphony_sync::reconcile::PassOptions {
                    dry_run: self.dry_run,
                    full: self.full,
                    force: self.force,
                    adopt_cxpanel: self.adopt_cxpanel_items,
                    quiet_gaps: false,
                    keep_open: false,
                },
                output: self.output,
            })
        } else if self.serve_only {
            Mode::Serve
        } else {
            Mode::Service
        }
    }

    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }
}

/// Run the mode the command line asks for; the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    if let Some(dir) = &cli.generate_assets {
        return report(
            assets::generate(dir)
                .map_err(|e| anyhow::anyhow!("cannot write assets to {}: {e}", dir.display())),
        );
    }
    logging::init(cli.log_format);
    isymphony_sync::integrity::set_repair(cli.repair);
    let path = cli.config_path();
    let mode = cli.mode();
    let rt = match runtime(matches!(mode, Mode::Once(_) | Mode::Serve)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("isymphony-sync: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match mode {
        Mode::Check => rt.block_on(check::run(&path)),
        Mode::Explain(what) => rt.block_on(explain::run(&path, &what, cli.output)),
        Mode::Export {
            out,
            include_secrets,
        } => report(rt.block_on(export::run(&path, &out, include_secrets))),
        Mode::Once(args) => rt.block_on(once::run(&path, args)),
        Mode::Serve => report(rt.block_on(serve::run(cli.config.as_deref()))),
        Mode::Service => report(rt.block_on(service::run(path))),
    };
    // Do not wait for stray blocking work (e.g. a DNS lookup) on the way out.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

/// The program's one Tokio runtime; every mode runs on it. A one-shot pass and `--serve-only`
/// run on the calling thread alone: their requests and connections then never wake another
/// thread. That cost a one-shot pass about a quarter of its CPU (a full verify at 1,000
/// extensions: 0.35 → 0.25 s of CPU) and the endpoint alone about a third (a first sync's
/// 5,013 requests: 0.13 → 0.09 s of CPU; `server_bench` on 2 cores, its clients beside it:
/// 27,652 → 31,231 POST/s, 62,202 → 82,992 GET/s). One core serves far more than a PBX's
/// panels ask; the service, which runs a pass and the endpoint side by side, keeps a thread
/// per core.
fn runtime(one_thread: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if one_thread {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
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
