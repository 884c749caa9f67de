//! What the agent reads from
//! servers, files and its own config, and what it shows of it. Real processes (the binary,
//! `openssl`), the embedded server over loopback with TLS, real MariaDB, real files and
//! signals. Small HTTP peers stand in only for servers misbehaving in ways the embedded one
//! never does (endless bodies, escape sequences in error messages); each is named a fake.

use crate::support;
use support::agent;
use support::e2e;

mod limits;
mod output;
mod reload;
mod tls;
mod watch;

use std::path::Path;

/// Runs the binary with `args` off the test's runtime; (exit code, stdout, stderr).
pub async fn run_bin(args: Vec<String>, rust_log: &str) -> (i32, String, String) {
    let mut cmd = support::process::bin();
    cmd.args(&args)
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .env_remove("JOURNAL_STREAM");
    let out = support::process::run_off_runtime(cmd).await;
    (out.code_or_signal(), out.stdout, out.stderr)
}

/// `--config path` plus `extra`.
pub fn with_config(path: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--config".to_string(), path.display().to_string()];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// No control character other than the line breaks between lines.
pub fn assert_no_control(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        bad.is_empty(),
        "{what} holds control characters {bad:?}:\n{text}"
    );
}
