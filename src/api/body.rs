//! Reading what an API server sends back, bounded: a body up to a cap (never buffered past
//! it), an error body's first bytes, and messages that quote at most [`QUOTE_MAX`] characters
//! of it with control characters escaped.

use crate::text::{clip, QUOTE_MAX};
use serde_json::Value;

/// Why a capped read stopped.
pub(crate) enum Capped {
    TooLarge,
    Failed(reqwest::Error),
}

/// The body, read chunk by chunk up to `cap` bytes (a longer body is never buffered).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, Capped> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Capped::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Failed)? {
        if out.len() + chunk.len() > cap {
            return Err(Capped::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The first `max` bytes of a body (as text), for error messages; read errors end it.
pub(crate) async fn read_prefix(mut resp: reqwest::Response, max: usize) -> String {
    let mut out = Vec::new();
    while out.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(max - out.len());
                out.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON decoding error without a long quoted value: serde quotes the whole offending
/// string, which can be megabytes long.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let (msg, suffix) = match full.strip_suffix(&suffix) {
        Some(msg) if e.line() > 0 => (msg, suffix.as_str()),
        _ => (full.as_str(), ""),
    };
    // `invalid type: string "<value>", expected u32`: clip the value, keep what was expected.
    let (what, expected) = msg.split_at(msg.rfind(", expected ").unwrap_or(msg.len()));
    format!(
        "{}{}{suffix}",
        clip(what, QUOTE_MAX),
        clip(expected, QUOTE_MAX)
    )
}

/// The human part of an error body: JSON `message`, or the text; at most [`QUOTE_MAX`]
/// characters, control characters escaped (the server's words end up in logs and terminals).
pub(crate) fn error_message(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return clip(m.trim(), QUOTE_MAX);
        }
    }
    clip(text.trim(), QUOTE_MAX)
}
