//! Fuzz the freepbx.conf parser (and the legacy amportal.conf parser next to it) on arbitrary
//! bytes, decoded the way the reader decodes files (UTF-8, else Windows-1252).
#![no_main]

use isymphony_sync::freepbx::files::{decode_text, parse_amportal_conf, parse_freepbx_conf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = decode_text(data);
    let _ = parse_freepbx_conf(&text);
    let _ = parse_amportal_conf(&text);
});
