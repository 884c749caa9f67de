//! Fuzz the voicemail.conf parser through its real entry point, `read_voicemail_conf(path)`:
//! each input is written to a file in a private temporary directory and read back, so the
//! byte decoding, `#include` handling (relative includes resolve inside that directory) and
//! line parsing all run exactly as in production.
#![no_main]

use isymphony_sync::freepbx::files::read_voicemail_conf;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static (tempfile::TempDir, PathBuf) {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        // /dev/shm keeps the per-input write off the disk when it exists.
        let d = tempfile::Builder::new()
            .prefix("vmfuzz")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temporary directory");
        let p = d.path().join("voicemail.conf");
        (d, p)
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, path) = dir();
    if std::fs::write(path, data).is_err() {
        return;
    }
    let vm = read_voicemail_conf(path);
    // Every mailbox comes from a non-empty key; an unknown file yields none.
    for m in &vm.mailboxes {
        assert!(!m.mailbox.is_empty());
    }
    assert!(vm.unknown.is_none() || vm.mailboxes.is_empty());
    assert!(!vm.error || vm.unknown.is_some());
});
