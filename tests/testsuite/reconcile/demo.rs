//! The shipped demo (examples/demo.toml + examples/freepbx-snapshot.json) parses and maps to
//! the objects the README shows.

use crate::support;

use isymphony_sync::config::Config;
use isymphony_sync::freepbx::snapshot::Snapshot;
use std::collections::BTreeSet;
use std::path::Path;

/// The README's output block of its first command (the plan it prints, shortened by `...`).
fn readme_plan_block() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let after = readme
        .split_once("Command 1 starts the embedded endpoint")
        .expect("the README's paragraph on its first command")
        .1;
    let block = after
        .split("```")
        .nth(1)
        .expect("a fenced block after that paragraph");
    block
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && l.trim() != "...")
        .map(str::to_string)
        .collect()
}

/// The quoted word after `prefix` in `line` (`… "alice"` → `alice`).
fn quoted_after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = line.split_once(prefix)?.1.trim_start();
    rest.strip_prefix('"')?.split('"').next()
}

/// The names that follow `marker` anywhere in `text` (up to the next character that is not
/// a letter, digit, `_` or `-`).
fn names_after<'a>(text: &'a str, marker: &str) -> BTreeSet<&'a str> {
    text.split(marker)
        .skip(1)
        .filter_map(|r| {
            r.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                .next()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn demo_snapshot_maps_to_the_objects_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = Config::load(&root.join("examples/demo.toml")).unwrap();
    assert!(cfg.server.enabled);
    let snap = Snapshot::load(&root.join("examples/freepbx-snapshot.json")).unwrap();
    let d = isymphony_sync::mapping::desired(&snap, &cfg);
    // The plan excerpt: each extension it creates, with its name, and each binding.
    let mut shown = 0;
    for line in readme_plan_block() {
        if let Some(rest) = line.trim().strip_prefix("+ create extension ") {
            let number = rest.split(' ').next().unwrap_or_default();
            let name = quoted_after(rest, number).unwrap_or_default();
            let ext = d.extensions.get(number);
            assert_eq!(ext.map(|e| e.display_name.as_str()), Some(name), "{line}");
            shown += 1;
        }
        if let Some(rest) = line.trim().strip_prefix("+ bind extension ") {
            let number = rest.split(' ').next().unwrap_or_default();
            let user = quoted_after(rest, "to user ").unwrap_or_default();
            let bound = d.users.get(user).map(|u| u.extensions.clone());
            assert_eq!(bound, Some(vec![number.to_string()]), "{line}");
            shown += 1;
        }
    }
    assert!(
        shown >= 3,
        "the README's plan excerpt shows too few objects"
    );
    // The Live API tour: every extension, queue, room and user it names by number or name.
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let tour = readme
        .split_once("### Try it on the demo")
        .expect("the README's demo tour")
        .1
        .split("\n### ")
        .next()
        .unwrap_or_default();
    let named = [
        (
            "extensions/getByName/",
            d.extensions.keys().collect::<Vec<_>>(),
        ),
        ("\"destination\":\"", d.extensions.keys().collect()),
        ("\"extensionNumber\":\"", d.extensions.keys().collect()),
        ("queues/getByName/", d.queues.keys().collect()),
        (
            "conferences/getByName/",
            d.conference_rooms.keys().collect(),
        ),
        ("users/getByName/", d.users.keys().collect()),
    ];
    for (marker, have) in named {
        let want = names_after(tour, marker);
        assert!(!want.is_empty(), "the tour names nothing after {marker}");
        for w in want {
            assert!(
                have.iter().any(|h| *h == w),
                "{marker}{w} is not in the demo: {have:?}"
            );
        }
    }
    assert_eq!(d.users["alice"].emails, ["alice@example.com"]);
    assert_eq!(d.parking_lot.as_ref().unwrap().destination_extension, "70");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

/// The README's first command, `isymphony-sync --config examples/demo.toml --sync-now`, run
/// twice from a copy of the repository's `examples/` (so its relative `target/demo-data` is a
/// temporary directory): the first run prints and applies the plan the README shows (its lines
/// in order), the second says
/// "in sync", and `--explain extension/1001` says it is live. The one change to the shipped file: port 0 instead of 58080, so the test never
/// collides with another listener.
#[test]
fn readme_demo_command_applies_then_says_in_sync() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    let demo = std::fs::read_to_string(root.join("examples/demo.toml")).unwrap();
    assert!(demo.contains("http_listen = \"127.0.0.1:58080\""), "{demo}");
    std::fs::write(
        dir.path().join("examples/demo.toml"),
        demo.replace("127.0.0.1:58080", "127.0.0.1:0"),
    )
    .unwrap();
    std::fs::copy(
        root.join("examples/freepbx-snapshot.json"),
        dir.path().join("examples/freepbx-snapshot.json"),
    )
    .unwrap();
    let run_with = |mode: &[&str]| {
        let out = support::process::run(
            support::process::with_config(Path::new("examples/demo.toml"), mode)
                .current_dir(dir.path())
                .env("NO_COLOR", "1"),
        );
        (out.code, out.text())
    };
    let run = || run_with(&["--sync-now"]);
    let (code, first) = run();
    assert_eq!(code, Some(0), "{first}");
    // Every line the README shows appears in this order; the "applied" line up to its
    // duration, which differs from run to run.
    let mut rest = first.as_str();
    for line in readme_plan_block() {
        let want = match line.split_once(" in ") {
            Some((head, _)) if line.starts_with("applied ") => head.to_string(),
            _ => line.clone(),
        };
        let at = rest
            .find(&want)
            .unwrap_or_else(|| panic!("the README shows {want:?}, not in order in:\n{first}"));
        rest = &rest[at + want.len()..];
    }
    assert!(
        first.contains("Plan: 25 to create, 2 to update, 0 to delete."),
        "{first}"
    );
    assert!(dir.path().join("target/demo-data").is_dir());
    let (code, second) = run();
    assert_eq!(code, Some(0), "{second}");
    assert!(second.contains("in sync"), "{second}");
    assert!(!second.contains("applied"), "{second}");
    // `--explain` on the demo hosts the embedded endpoint and its (simulated) Live API too.
    // (Not "last written": the agent's state is kept per target URL, and port 0 gives each
    // run another one.)
    let (code, one) = run_with(&["--explain", "extension/1001"]);
    assert_eq!(code, Some(0), "{one}");
    for want in [
        "users 1001: name \"Alice Smith\"",
        "owner: agent",
        "nothing: in sync",
        "live: the Live API lists it",
    ] {
        assert!(one.contains(want), "{want:?} not in:\n{one}");
    }
    let (code, unknown) = run_with(&["--explain", "extension/1009"]);
    assert_eq!(code, Some(1), "{unknown}");
    assert!(
        unknown.contains("1001"),
        "closest keys suggested: {unknown}"
    );
}
