//! The one-shot front end: `--sync-now` and `--dry-run` (with `--output`, `--full`, `--force`).
//!
//! Prints the plan (text grouped by kind, or JSON), shows progress of a long apply on a
//! terminal, honours `NO_COLOR`, and maps the outcome to the exit code: `--sync-now` 0 ok /
//! 1 error; `--dry-run` 0 in sync / 2 changes pending / 1 error.

use super::{run_pass_with_progress, PassOptions, PassReport, ReconcileError};
use crate::config::Config;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// `--sync-now` / `--dry-run` from `main`: load the configuration, run one pass on a fresh
/// runtime, print it; returns the exit code.
pub fn main_once(config: &std::path::Path, opts: PassOptions, output: OutputFormat) -> u8 {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("isymphony-sync: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("isymphony-sync: cannot start the async runtime: {e}");
            return 1;
        }
    };
    rt.block_on(run_once(cfg, opts, output))
}

/// Run one pass and print it; returns the process exit code.
pub async fn run_once(cfg: Config, opts: PassOptions, output: OutputFormat) -> u8 {
    let mut cfg = cfg;
    // With [server] enabled, this process hosts the embedded endpoint for the pass (the demo
    // on a fresh machine); the target defaults to it.
    let mut server = None;
    if cfg.server.enabled {
        match crate::server::start(&cfg.server, None).await {
            Ok(h) => {
                super::source::target_embedded(&mut cfg, &h.base_url());
                super::source::trust_embedded(&mut cfg, &h.base_url(), h.agent_token());
                server = Some(h);
            }
            // Typically a running daemon already serves it: use the configured target.
            Err(e) => tracing::warn!("embedded endpoint not started: {e}"),
        }
    }
    let show_progress = output == OutputFormat::Text && std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if total >= 20 && (done % 10 == 0 || done == total) {
            eprint!("\rapplying: {done}/{total}");
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    };
    let progress: Option<&(dyn Fn(usize, usize) + Sync)> = if show_progress && !opts.dry_run {
        Some(&progress)
    } else {
        None
    };
    let result = run_pass_with_progress(&cfg, &opts, progress).await;
    let code = match &result {
        Ok(r) => r.exit_code(opts.dry_run),
        Err(_) => 1,
    };
    match output {
        OutputFormat::Json => {
            let v = match &result {
                Ok(r) => r.to_json(),
                Err(e) => error_json(e),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            );
        }
        OutputFormat::Text => match &result {
            Ok(r) => print!("{}", render_report(r, color_allowed())),
            Err(e) => {
                if let Some(r) = e.report() {
                    print!("{}", render_report(r, color_allowed()));
                }
                eprintln!("error: {}", crate::text::escape_control(&e.to_string()));
            }
        },
    }
    if let Some(h) = server {
        h.shutdown().await;
    }
    code
}

fn error_json(e: &ReconcileError) -> serde_json::Value {
    let kind = match e {
        ReconcileError::FreepbxUnreadable(_) => "freepbx_unreadable",
        ReconcileError::IsymphonyUnreachable(_) => "isymphony_unreachable",
        ReconcileError::IsymphonyRefused(_) => "isymphony_refused",
        ReconcileError::SafetyValve { .. } => "safety_valve",
        ReconcileError::EmptySource(_) => "empty_source",
        ReconcileError::State(_) => "state",
        ReconcileError::Config(_) => "config",
        ReconcileError::Stopped { .. } => "stopped",
    };
    let mut v = match e.report() {
        Some(r) => r.to_json(),
        None => serde_json::json!({}),
    };
    v["error"] = serde_json::json!({"kind": kind, "message": e.to_string()});
    v["exit_code"] = serde_json::json!(1);
    v
}

/// Plan, then the outcome, for people.
pub fn render_report(r: &PassReport, color: bool) -> String {
    let mut out = String::new();
    if !r.plan.is_empty() || !r.plan.warnings.is_empty() {
        out.push_str(&r.plan.render_text(color));
    }
    for e in &r.errors {
        out.push_str(&format!("failed: {}\n", crate::text::escape_control(e)));
    }
    if !r.unreadable.is_empty() {
        out.push_str("partial pass: what depends on the unreadable resources above was skipped\n");
    }
    out.push_str(&r.summary_line());
    out.push('\n');
    out
}
