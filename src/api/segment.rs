//! The percent-encoding of one path segment of the Configuration API (names from FreePBX may
//! hold anything). A leaf, so that [`super::paths`] and [`super::resource`] both use it
//! without importing each other; [`super::paths`] re-exports it.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a segment keeps literal: RFC 3986's unreserved characters; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode one path segment (names from FreePBX may hold anything).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The bytes a segment names: `%XX` escapes decoded (a `%` not followed by two hex digits
/// stays as it is). Not necessarily UTF-8.
pub fn unseg_bytes(s: &str) -> Vec<u8> {
    percent_decode_str(s).collect()
}

/// [`unseg_bytes`] as text (invalid UTF-8 replaced).
pub fn unseg(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}
