//! Times as the host shows them: the host's time zone (`TZ`, else `/etc/localtime`), through
//! the C library's `localtime_r`, so the page agrees with `date` and the journal.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-12-01 19:20:05 CET` in the host's time zone (UTC if the C library cannot convert).
pub(crate) fn format(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as libc::time_t,
        Err(_) => 0,
    };
    match local(secs) {
        Some((tm, zone)) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        ),
        None => crate::agent::state::status::rfc3339(t),
    }
}

/// `19:20:05` (hours, minutes, seconds) in the host's time zone, for chart axes.
pub(crate) fn clock(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    match local(secs) {
        Some((tm, _)) => format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec),
        None => String::new(),
    }
}

/// The host's name for its time zone now (`CET`, `UTC`, `+0530`).
pub(crate) fn zone_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    local(now).map(|(_, z)| z).unwrap_or_else(|| "UTC".into())
}

fn local(secs: libc::time_t) -> Option<(libc::tm, String)> {
    // SAFETY: `localtime_r` writes only into `tm`, which lives on this stack frame; `tzset`
    // (called by it) reads the environment and /etc/localtime. `tm_zone` points into the C
    // library's static zone table, read at once and copied.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return None;
        }
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        Some((tm, zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_a_known_instant_with_its_zone() {
        // Whatever the host's zone, the seconds survive and the zone is named.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_800_318);
        let s = format(t);
        assert!(s.contains(":18 "), "{s}");
        assert!(s.len() > "2026-11-27 17:25:18 ".len(), "{s}");
        assert_eq!(clock(t).len(), 8);
        assert!(!zone_name().is_empty());
    }
}
