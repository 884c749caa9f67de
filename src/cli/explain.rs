//! `--explain KIND/KEY` (with `--output json`): one object from its FreePBX row to live in
//! iSymphony, printed as text or JSON. Exit status as `--dry-run`'s: 0 in sync and live, 2
//! changes pending or not live, 1 an unknown object (closest keys suggested) or an error.

use super::OutputFormat;
use isymphony_sync::config::Config;
use isymphony_sync::explain::{self, render, ExplainError, ObjectRef};
use isymphony_sync::text::escape_control;
use std::path::Path;
use std::process::ExitCode;

/// Load the configuration, explain `what`, print it.
pub async fn run(config: &Path, what: &str, output: OutputFormat) -> ExitCode {
    let obj: ObjectRef = match what.parse() {
        Ok(o) => o,
        Err(e) => return fail(&e, output),
    };
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("isymphony-sync: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The demo's embedded endpoint with its Live API, as `--dry-run` starts it.
    let (cfg, server) = super::once::with_embedded_server(cfg, true).await;
    let code = match explain::explain(&cfg, &obj).await {
        Ok(e) => {
            match output {
                OutputFormat::Text => print!("{}", render::text(&e)),
                OutputFormat::Json => println!("{:#}", render::json(&e)),
            }
            ExitCode::from(e.exit_code())
        }
        Err(e) => fail(&e, output),
    };
    if let Some(h) = server {
        h.shutdown().await;
    }
    code
}

/// An error on stderr (and, for tools, as JSON on stdout); exit 1.
fn fail(e: &ExplainError, output: OutputFormat) -> ExitCode {
    if output == OutputFormat::Json {
        let suggestions = match e {
            ExplainError::Unknown { suggestions, .. } => suggestions.clone(),
            _ => Vec::new(),
        };
        let v = serde_json::json!({
            "error": e.to_string(),
            "unknown": matches!(e, ExplainError::Unknown { .. }),
            "suggestions": suggestions,
            "exit_code": 1,
        });
        println!("{v:#}");
    }
    eprintln!("isymphony-sync: {}", escape_control(&e.to_string()));
    ExitCode::FAILURE
}
