//! The shipped demo (examples/demo.toml + examples/freepbx-snapshot.json) parses and maps to
//! the objects the README shows.

mod support;

use isymphony_sync::config::Config;
use isymphony_sync::freepbx::snapshot::Snapshot;
use std::path::Path;

#[test]
fn demo_snapshot_maps_to_the_documented_objects() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = Config::load(&root.join("examples/demo.toml")).unwrap();
    assert!(cfg.server.enabled);
    let snap = Snapshot::load(&root.join("examples/freepbx-snapshot.json")).unwrap();
    let d = isymphony_sync::mapping::desired(&snap, &cfg);
    assert_eq!(d.extensions.len(), 4, "{:?}", d.extensions.keys());
    assert_eq!(
        d.users.keys().cloned().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
    assert_eq!(d.users["alice"].extensions, ["1001"]);
    assert_eq!(d.users["alice"].emails, ["alice@example.com"]);
    assert_eq!(d.queues.len(), 2);
    assert_eq!(d.conference_rooms.len(), 1);
    assert_eq!(d.administrators.len(), 1);
    assert_eq!(d.parking_lot.as_ref().unwrap().destination_extension, "70");
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

/// The README's first command, `isymphony-sync --config examples/demo.toml --sync-now`, run
/// twice from a copy of the repository's `examples/` (so its relative `target/demo-data` is a
/// temporary directory): the first run applies the plan the README shows, the second says
/// "in sync". The one change to the shipped file: port 0 instead of 58080, so the test never
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
    let run = || {
        let out = support::process::bin()
            .current_dir(dir.path())
            .args(["--config", "examples/demo.toml", "--sync-now"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, first) = run();
    assert_eq!(code, Some(0), "{first}");
    assert!(
        first.contains("Plan: 25 to create, 2 to update, 0 to delete."),
        "{first}"
    );
    assert!(
        first.contains("applied 27 of 27 operations, 0 failed"),
        "{first}"
    );
    assert!(dir.path().join("target/demo-data").is_dir());
    let (code, second) = run();
    assert_eq!(code, Some(0), "{second}");
    assert!(second.contains("in sync"), "{second}");
    assert!(!second.contains("applied"), "{second}");
}
