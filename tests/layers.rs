//! The crate's layers (drawn in `src/lib.rs`): the pure core imports nothing that does I/O,
//! and the rules that used to exist twice live once. Reads the real source files.

use isymphony_sync::api::paths;
use isymphony_sync::model::{core_server_slug, DEFAULT_CORE_SERVER};
use std::path::{Path, PathBuf};

/// The pure core: diff, plan and ownership with what they use, and what they are made of.
const PURE: &[&str] = &[
    "src/model.rs",
    "src/model",
    "src/api/types.rs",
    "src/api/paths.rs",
    "src/api/confirm.rs",
    "src/reconcile/diff",
    "src/reconcile/plan.rs",
    "src/reconcile/ownership.rs",
    "src/reconcile/passwords.rs",
    "src/reconcile/facts.rs",
    "src/digest.rs",
    "src/secret.rs",
];

/// What does I/O (or sits above the core): none of it may be named by a pure file.
const FORBIDDEN: &[&str] = &[
    "reqwest",
    "rusqlite",
    "mysql_async",
    "tokio",
    "std::fs",
    "std::net",
    "api::client",
    "reconcile::state",
    "super::state",
    "super::apply",
    "super::observe",
    "super::source",
    "crate::agent",
    "crate::server",
    "crate::freepbx",
];

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("readable source directory") {
            rust_files(&e.expect("directory entry").path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

#[test]
fn the_pure_core_imports_nothing_that_does_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for p in PURE {
        rust_files(&root.join(p), &mut files);
    }
    assert!(files.len() >= 8, "pure-core files not found: {files:?}");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in FORBIDDEN {
                if code.contains(bad) {
                    found.push(format!("{}:{}: {bad}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the pure core names I/O modules:\n{}",
        found.join("\n")
    );
}

#[test]
fn one_core_server_slug_rule() {
    assert_eq!(core_server_slug(Some("toml"), Some("cx")), "toml");
    assert_eq!(core_server_slug(Some(""), Some("cx")), "cx");
    assert_eq!(core_server_slug(None, Some("cx")), "cx");
    assert_eq!(core_server_slug(None, Some("")), DEFAULT_CORE_SERVER);
    assert_eq!(core_server_slug(None, None), "default");
}

#[test]
fn one_percent_encoding_for_client_and_server() {
    for s in ["a b/c", "100%", "ünï", "x~y-z_.", "%2F", ""] {
        assert_eq!(paths::unseg(&paths::seg(s)), s);
    }
    assert_eq!(paths::seg("a b/c"), "a%20b%2Fc");
    assert_eq!(paths::unseg("100%"), "100%");
    assert_eq!(paths::unseg("a%4"), "a%4");
    assert_eq!(
        paths::API_ROOT,
        format!("/{}", paths::PREFIX.trim_end_matches('/'))
    );
    assert_eq!(
        paths::ALT_ROOT,
        format!("/{}", paths::ALT_PREFIX.trim_end_matches('/'))
    );
    assert_eq!(
        isymphony_sync::server::API_PREFIX,
        paths::API_ROOT,
        "the server nests its routes where the client sends"
    );
}

#[test]
fn the_embedded_server_imports_neither_the_agent_nor_the_reconciler() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/server"), &mut files);
    assert!(files.len() >= 5, "server files not found: {files:?}");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in ["crate::agent", "crate::reconcile"] {
                if code.contains(bad) {
                    found.push(format!("{}:{}: {bad}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "server/ imports a layer above it:\n{}",
        found.join("\n")
    );
}
