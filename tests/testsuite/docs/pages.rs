//! The docs match the code: `docs/` holds one page per area plus
//! `docs/architecture.md`, no page is a "proposed README" text, `src/lib.rs`'s module map names
//! every top-level module, the architecture page names every file of `src/`, and the doc
//! comments in `src/` cite only files that exist in the repository. Reads the real files.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("list {}: {e}", d.display())) {
            let p = entry.expect("directory entry").path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn docs_holds_one_page_per_area_and_the_architecture() {
    let mut pages: Vec<String> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let want = [
        "README-agent.md",
        "README-freepbx.md",
        "README-hardening.md",
        "README-live.md",
        "README-performance.md",
        "README-reconcile.md",
        "README-server.md",
        "architecture.md",
    ];
    assert_eq!(pages, want, "docs/ should hold exactly these pages");
    for page in want {
        let text = read(&root().join("docs").join(page));
        let lower = text.to_lowercase();
        assert!(
            !lower.contains("proposed readme") && !lower.contains("readme text proposed"),
            "docs/{page} still calls itself proposed README text"
        );
        assert!(
            text.starts_with("# "),
            "docs/{page} should open with one title"
        );
    }
}

#[test]
fn the_module_map_of_lib_rs_names_every_top_level_module() {
    let lib = read(&root().join("src/lib.rs"));
    let docs: String = lib
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mods: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .collect();
    assert!(mods.len() > 10, "found only {mods:?} in src/lib.rs");
    for m in mods {
        assert!(
            docs.contains(&format!("[`{m}`]")),
            "src/lib.rs's module map does not name `{m}`"
        );
    }
}

#[test]
fn the_architecture_page_names_every_file_of_src() {
    let page = read(&root().join("docs/architecture.md"));
    for f in rust_files(&root().join("src")) {
        let name = f.file_name().expect("file name").to_string_lossy();
        assert!(
            page.contains(name.as_ref()),
            "docs/architecture.md does not list {}",
            f.display()
        );
    }
}

/// Paths a doc comment cites: words that start with a repository directory or name a
/// top-level document, trimmed of punctuation.
fn cited_paths(line: &str) -> Vec<String> {
    line.split(|c: char| c.is_whitespace() || "`()[],;\"'".contains(c))
        .map(|w| w.trim_end_matches(['.', ':']))
        .filter(|w| {
            [
                "docs/",
                "tests/",
                "src/",
                "benches/",
                "scripts/",
                "examples/",
                "../",
            ]
            .iter()
            .any(|d| w.starts_with(d))
                || w.ends_with(".md")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn doc_comments_cite_only_files_in_the_repository() {
    let mut missing = Vec::new();
    for f in rust_files(&root().join("src")) {
        for (n, line) in read(&f).lines().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("//!") || t.starts_with("///")) {
                continue;
            }
            if t.contains("reference/") || t.contains("reference §") {
                missing.push(format!("{}:{}: {t}", f.display(), n + 1));
            }
            for p in cited_paths(t) {
                if !root().join(&p).exists() {
                    missing.push(format!("{}:{}: {p}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "doc comments cite files outside the repository:\n{}",
        missing.join("\n")
    );
}
