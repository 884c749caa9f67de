//! The real binary's command line: modes that exclude each other are a usage error (exit 2,
//! clap's message naming both flags) instead of one of them silently winning, and the
//! combinations users and scripts rely on still run their mode.

use crate::support;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    // A configuration file that does not exist: a mode that runs fails on it with exit 1,
    // which tells it apart from clap's usage error (2) without touching any server.
    let missing = dir.path().join("missing.toml");
    let out = support::process::run(
        support::process::with_config(&missing, args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn"),
    );
    (out.code, out.stdout, out.stderr)
}

#[test]
fn conflicting_modes_are_a_usage_error() {
    let snap = "/nonexistent/snap.json";
    let pairs: &[(&[&str], &str, &str)] = &[
        (
            &["--sync-now", "--serve-only"],
            "--serve-only",
            "--sync-now",
        ),
        (&["--dry-run", "--serve-only"], "--serve-only", "--dry-run"),
        (
            &["--check-config", "--dry-run"],
            "--check-config",
            "--dry-run",
        ),
        (
            &["--check-config", "--sync-now"],
            "--check-config",
            "--sync-now",
        ),
        (
            &["--check-config", "--serve-only"],
            "--serve-only",
            "--check-config",
        ),
        (
            &["--export-snapshot", snap, "--sync-now"],
            "--export-snapshot",
            "--sync-now",
        ),
        (
            &["--export-snapshot", snap, "--dry-run"],
            "--export-snapshot",
            "--dry-run",
        ),
        (
            &["--export-snapshot", snap, "--check-config"],
            "--check-config",
            "--export-snapshot",
        ),
        (
            &["--export-snapshot", snap, "--serve-only"],
            "--serve-only",
            "--export-snapshot",
        ),
    ];
    for (args, a, b) in pairs {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {out}\n{err}");
        assert!(err.contains("cannot be used with"), "{args:?}: {err}");
        assert!(
            err.contains(a) && err.contains(b),
            "{args:?} names both: {err}"
        );
        assert!(err.contains("Usage:"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed on stdout: {out}");
    }
}

#[test]
fn adopting_needs_a_pass() {
    for args in [
        &["--adopt-cxpanel-items"][..],
        &["--check-config", "--adopt-cxpanel-items"],
        &["--serve-only", "--adopt-cxpanel-items"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--sync-now") && err.contains("--dry-run"),
            "{err}"
        );
    }
}

/// `--dry-run` alone or with `--sync-now`, and the modes with their usual companions, get
/// past the command line and fail only on the missing configuration file (exit 1).
#[test]
fn known_combinations_still_run_their_mode() {
    for args in [
        &["--dry-run"][..],
        &["--sync-now"],
        &["--sync-now", "--dry-run"],
        &["--dry-run", "--full", "--output", "json"],
        &["--sync-now", "--force", "--full"],
        &["--dry-run", "--adopt-cxpanel-items"],
        &["--sync-now", "--repair"],
        &[
            "--export-snapshot",
            "/nonexistent/snap.json",
            "--include-secrets",
        ],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {out}\n{err}");
        assert!(
            !err.contains("Usage:"),
            "{args:?} is a valid command line: {err}"
        );
        assert!(
            err.contains("missing.toml"),
            "{args:?} names the file: {err}"
        );
    }
    // --check-config reports the missing file as a failed check on stdout.
    let (code, out, err) = run(&["--check-config"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("missing.toml"), "{out}");
}
