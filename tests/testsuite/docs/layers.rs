//! The crate's layers (drawn in `src/lib.rs`): the pure core imports nothing that does I/O
//! and nothing above it, the embedded server imports neither the agent nor the reconciler,
//! and the rules that used to exist twice live once. Reads the real source files and parses
//! them with `syn`, so grouped imports (`use super::{plan, observe}`), renames and paths
//! written inline (`std::fs::read(…)`) count like any other.

use isymphony_sync::api::paths;
use isymphony_sync::model::{core_server_slug, DEFAULT_CORE_SERVER};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// The pure core and the data it is made of (`src/lib.rs`'s two bottom layers, less
/// `config`, which reads files), and `reconcile::adopt`, which the plan names: every file
/// under these paths is checked.
const PURE: &[&str] = &[
    "src/model.rs",
    "src/model",
    "src/api/types.rs",
    "src/api/paths.rs",
    "src/api/segment.rs",
    "src/api/confirm.rs",
    "src/api/resource.rs",
    "src/reconcile/diff",
    "src/reconcile/plan.rs",
    "src/reconcile/ownership.rs",
    "src/reconcile/passwords.rs",
    "src/reconcile/facts.rs",
    "src/reconcile/valve.rs",
    "src/reconcile/frozen.rs",
    "src/reconcile/partial.rs",
    "src/reconcile/adopt.rs",
    "src/digest.rs",
    "src/secret.rs",
    "src/text.rs",
];

/// Items of an I/O crate that are plain data: reqwest's re-export of the `url` crate's `Url`
/// (parsing only; `text` uses it to show URLs without their credentials).
const PURE_ITEMS: &[&str] = &["reqwest::Url"];

/// Crates outside this one that a pure file may name: plain data (`bytes`: a shared byte
/// buffer), encodings and hashes.
const PURE_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "serde",
    "serde_json",
    "uuid",
    "sha1",
    "sha2",
    "hex",
    "base64",
    "bytes",
    "percent_encoding",
    "subtle",
    "thiserror",
    "ipnet",
    "strum",
];

/// Parts of `std` that do I/O (files, sockets, processes, the environment, threads, clock).
const STD_IO: &[&str] = &["fs", "net", "process", "env", "os", "thread"];

/// The clock, in `std::time` (a `Duration` is plain data).
const CLOCK: &[&str] = &["Instant", "SystemTime"];

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("readable source directory") {
            rust_files(&e.expect("directory entry").path(), out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The module path of a file under `src/` (`src/reconcile/diff/mod.rs` → `reconcile::diff`).
fn module_of(file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(root().join("src"))
        .expect("a file under src/");
    let mut m: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if m.last().is_some_and(|l| l == "mod" || l == "lib") {
        m.pop();
    }
    m
}

/// Every path a file names, in `use` trees and inline, with `crate::`, `self::` and
/// `super::` resolved to `crate::…` from the file's module (inline `mod`s included); paths
/// that start with a local name stay as written.
struct Paths {
    module: Vec<String>,
    found: Vec<String>,
}

impl Paths {
    fn resolve(&self, segs: &[String]) -> String {
        let mut module = self.module.clone();
        let mut rest = segs;
        match segs.first().map(String::as_str) {
            Some("crate") => {
                module.clear();
                rest = &segs[1..];
            }
            Some("self") => rest = &segs[1..],
            Some("super") => {
                while rest.first().is_some_and(|s| s == "super") {
                    module.pop();
                    rest = &rest[1..];
                }
            }
            _ => return segs.join("::"),
        }
        let mut all = vec!["crate".to_string()];
        all.extend(module);
        all.extend(rest.iter().filter(|s| *s != "self").cloned());
        all.join("::")
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
            syn::UseTree::Name(n) => self.push(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.push(prefix, &r.ident),
            syn::UseTree::Glob(_) => {
                let p = self.resolve(prefix);
                self.found.push(p);
            }
        }
    }

    fn push(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut segs = prefix.to_vec();
        segs.push(ident.to_string());
        let p = self.resolve(&segs);
        self.found.push(p);
    }
}

impl<'ast> Visit<'ast> for Paths {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segs.len() > 1 {
            let resolved = self.resolve(&segs);
            self.found.push(resolved);
        }
        syn::visit::visit_path(self, p);
    }
}

/// The resolved paths `file` names.
fn paths_in(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("readable source file");
    let ast =
        syn::parse_file(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
    let mut v = Paths {
        module: module_of(file),
        found: Vec::new(),
    };
    v.visit_file(&ast);
    v.found
}

/// The module a `crate::…` path lies in is pure when it is one of [`PURE`] or inside one.
fn is_pure_module(path: &str, pure: &[Vec<String>]) -> bool {
    let segs: Vec<&str> = path.split("::").skip(1).collect();
    pure.iter()
        .any(|m| segs.len() >= m.len() && m.iter().zip(&segs).all(|(a, b)| a == b))
}

/// The crates this one depends on (`[dependencies]` of Cargo.toml), as code names them.
fn dependencies() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("readable Cargo.toml");
    let manifest: toml::Table = text.parse().expect("Cargo.toml parses");
    let deps = manifest["dependencies"]
        .as_table()
        .expect("a [dependencies] table");
    let mut names: Vec<String> = deps.keys().map(|k| k.replace('-', "_")).collect();
    names.extend(["std", "core", "alloc"].map(String::from));
    names
}

/// Why a pure file may not name `path`, or None when it may. Paths that start with neither
/// `crate` nor a crate name start with a local name (a module, an import) and were checked
/// where that name was imported.
fn impure(path: &str, pure: &[Vec<String>], crates: &[String]) -> Option<&'static str> {
    let mut segs = path.split("::");
    let first = segs.next().unwrap_or_default();
    if first == "crate" {
        return (!is_pure_module(path, pure)).then_some("a module above the pure core");
    }
    if first == "std" || first == "core" {
        let rest: Vec<&str> = segs.collect();
        let io = STD_IO.contains(&rest.first().copied().unwrap_or_default())
            || (rest.first() == Some(&"time") && rest.iter().any(|s| CLOCK.contains(s)));
        return io.then_some("a part of std that does I/O");
    }
    let item = PURE_ITEMS
        .iter()
        .any(|i| path == *i || path.starts_with(&format!("{i}::")));
    (crates.iter().any(|c| c == first) && !PURE_CRATES.contains(&first) && !item)
        .then_some("a crate that does I/O or is not plain data")
}

#[test]
fn the_pure_core_imports_nothing_that_does_io() {
    let mut files = Vec::new();
    for p in PURE {
        let path = root().join(p);
        assert!(path.exists(), "{p} is named as pure but does not exist");
        rust_files(&path, &mut files);
    }
    let pure: Vec<Vec<String>> = PURE.iter().map(|p| module_of(&root().join(p))).collect();
    let crates = dependencies();
    let mut found = Vec::new();
    for f in &files {
        for p in paths_in(f) {
            if let Some(why) = impure(&p, &pure, &crates) {
                found.push(format!("{}: {p} ({why})", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the pure core names what is above it or does I/O:\n{}",
        found.join("\n")
    );
}

/// The check itself: a grouped import of a module above the core, a renamed one, a glob and
/// an inline path to `std::fs` are all caught.
#[test]
fn the_layer_check_sees_grouped_renamed_and_inline_paths() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("probe.rs");
    std::fs::write(
        &file,
        "use super::{plan::Kind, observe::Gaps};\nuse crate::agent as a;\nuse tokio::*;\n\
         fn f() { let _ = std::fs::read(\"x\"); let _ = std::time::Instant::now(); }\nmod inner { use super::super::state::X; }\n",
    )
    .expect("write the probe");
    let mut v = Paths {
        module: vec!["reconcile".into(), "partial".into()],
        found: Vec::new(),
    };
    let text = std::fs::read_to_string(&file).expect("read the probe");
    v.visit_file(&syn::parse_file(&text).expect("the probe parses"));
    let pure = vec![vec!["reconcile".to_string(), "plan".to_string()]];
    let bad: Vec<&str> = v
        .found
        .iter()
        .filter(|p| impure(p, &pure, &dependencies()).is_some())
        .map(String::as_str)
        .collect();
    assert_eq!(
        bad,
        [
            "crate::reconcile::observe::Gaps",
            "crate::agent",
            "tokio",
            "std::fs::read",
            "std::time::Instant::now",
            "crate::reconcile::state::X",
        ]
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
    let mut files = Vec::new();
    rust_files(&root().join("src/server"), &mut files);
    assert!(files.len() >= 5, "server files not found: {files:?}");
    let mut found = Vec::new();
    for f in &files {
        for p in paths_in(f) {
            if ["crate::agent", "crate::reconcile"]
                .iter()
                .any(|bad| p == *bad || p.starts_with(&format!("{bad}::")))
            {
                found.push(format!("{}: {p}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "server/ imports a layer above it:\n{}",
        found.join("\n")
    );
}
