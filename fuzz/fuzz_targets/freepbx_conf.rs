//! Fuzz the freepbx.conf reader (the PHP lexer behind `parse_freepbx_conf`) and the legacy
//! amportal.conf parser on arbitrary bytes, decoded the way the reader decodes files (UTF-8,
//! else Windows-1252). Property: any value written as a PHP single-quoted literal (the
//! escaping FreePBX's installer uses) reads back exactly, whatever text follows it.
#![no_main]

use isymphony_sync::freepbx::files::{decode_text, parse_amportal_conf, parse_freepbx_conf};
use isymphony_sync::freepbx::phpconf::parse_php_conf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = decode_text(data);
    let _ = parse_freepbx_conf(&text);
    let _ = parse_amportal_conf(&text);

    let literal = text.replace('\\', "\\\\").replace('\'', "\\'");
    let file = format!("<?php\n$amp_conf['AMPDBPASS'] = '{literal}';\n// {text}");
    let conf = parse_php_conf(&file);
    assert_eq!(conf.values.get("AMPDBPASS"), Some(&text), "{file:?}");
});
