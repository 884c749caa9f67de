//! `--sync-now` and `--dry-run` (with `--output`, `--full`, `--force`,
//! `--adopt-cxpanel-items`): one pass, printed as text grouped by kind or as JSON, with a
//! progress bar on a terminal; honours `NO_COLOR`. Exit status: `--sync-now` 0 ok / 1 error;
//! `--dry-run` 0 in sync / 2 changes pending / 1 error (see `PassOutcome::code`).

use super::progress::Bar;
use super::OutputFormat;
use isymphony_sync::config::Config;
use isymphony_sync::reconcile::render::render_report;
use isymphony_sync::reconcile::{self, PassOptions, Progress};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

pub struct Args {
    pub opts: PassOptions,
    pub output: OutputFormat,
}

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Load the configuration, run one pass, print it.
pub async fn run(config: &Path, args: Args) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("isymphony-sync: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (cfg, server) = with_embedded_server(cfg, false).await;
    let Args { opts, output } = args;
    // The bar is for people at a terminal: never with JSON output, never into a pipe or a log.
    let bar = (output == OutputFormat::Text && std::io::stderr().is_terminal()).then(Bar::new);
    let result =
        reconcile::run_pass_with_progress(&cfg, &opts, bar.as_ref().map(|b| b as &dyn Progress))
            .await;
    if let Some(b) = &bar {
        b.finish();
    }
    let code = match &result {
        Ok(r) => r.outcome().code(opts.dry_run),
        Err(e) => e.outcome().code(opts.dry_run),
    };
    match output {
        OutputFormat::Json => {
            let v = match &result {
                Ok(r) => r.to_json(),
                Err(e) => e.to_json(),
            };
            // A serde_json::Value always serialises (its map keys are strings).
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("a JSON value serialises")
            );
        }
        OutputFormat::Text => match &result {
            Ok(r) => {
                print!("{}", render_report(r, color_allowed()));
                // Withheld deletions end the pass partial; people read why as an error.
                if let Some(e) = r.valve_refusal() {
                    eprintln!(
                        "error: {}",
                        isymphony_sync::text::escape_control(&e.to_string())
                    );
                }
            }
            Err(e) => {
                if let Some(r) = e.report() {
                    print!("{}", render_report(r, color_allowed()));
                }
                eprintln!(
                    "error: {}",
                    isymphony_sync::text::escape_control(&e.to_string())
                );
            }
        },
    }
    if let Some(h) = server {
        h.shutdown().await;
    }
    // The process ends next: freeing the report's plan (thousands of operations and their
    // bodies at 1,000 extensions) would cost it a few percent of a first sync's CPU for
    // nothing. It holds no file or connection (the pass closed them).
    std::mem::forget(result);
    ExitCode::from(code)
}

/// With `[server] enabled`, this process hosts the embedded endpoint for the pass (the demo on
/// a fresh machine) and the target defaults to it. `live`: with its Live API (`[live]`), for
/// `--explain`, which asks whether the object is live.
pub(super) async fn with_embedded_server(
    mut cfg: Config,
    live: bool,
) -> (Config, Option<isymphony_sync::server::ServerHandle>) {
    if !cfg.server.enabled {
        return (cfg, None);
    }
    let backend = if live {
        match isymphony_sync::live::Live::start(&cfg).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    } else {
        None
    };
    match isymphony_sync::server::start_live(&cfg.server, None, None, backend).await {
        Ok(h) => {
            reconcile::source::target_embedded(&mut cfg, &h.base_url());
            reconcile::source::trust_embedded(&mut cfg, &h.base_url(), h.agent_token());
            (cfg, Some(h))
        }
        // Typically a running daemon already serves it: use the configured target.
        Err(e) => {
            tracing::warn!("embedded endpoint not started: {e}");
            (cfg, None)
        }
    }
}
