//! The shipped demo (examples/demo.toml + examples/freepbx-snapshot.json) parses and maps to
//! the objects the README shows.

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
