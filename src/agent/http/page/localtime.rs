//! Times as the host shows them: the host's time zone (`TZ`, else `/etc/localtime`), read
//! and applied by `jiff` (its system zone follows the same rules as the C library), so the
//! page agrees with `date` and the journal.

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use std::fmt::Write as _;
use std::time::SystemTime;

/// `t` formatted with the strftime `pattern` in `tz`; None for an instant jiff cannot
/// represent.
fn strftime_in(t: SystemTime, tz: TimeZone, pattern: &str) -> Option<String> {
    let z: Zoned = Timestamp::try_from(t).ok()?.to_zoned(tz);
    let mut s = String::new();
    // A Display that fails (a zone with no abbreviation) must not panic the page.
    write!(s, "{}", z.strftime(pattern)).ok()?;
    Some(s)
}

/// [`strftime_in`] the host's time zone.
fn strftime(t: SystemTime, pattern: &str) -> Option<String> {
    strftime_in(t, TimeZone::system(), pattern)
}

/// `2026-12-01 19:20:05 CET` in the host's time zone (RFC 3339 UTC if it cannot be shown).
pub(crate) fn format(t: SystemTime) -> String {
    strftime(t, "%Y-%m-%d %H:%M:%S %Z").unwrap_or_else(|| crate::agent::state::status::rfc3339(t))
}

/// `19:20:05` (hours, minutes, seconds) in the host's time zone, for chart axes.
pub(crate) fn clock(t: SystemTime) -> String {
    strftime(t, "%H:%M:%S").unwrap_or_default()
}

/// The host's name for its time zone now (`CET`, `UTC`, `+0530`).
pub(crate) fn zone_name() -> String {
    strftime(SystemTime::now(), "%Z").unwrap_or_else(|| "UTC".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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

    #[test]
    fn a_zone_with_summer_time_shows_the_abbreviation_of_the_day() {
        // Central Europe as a POSIX TZ string (no tz database needed).
        let tz = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let fmt = |secs| {
            strftime_in(
                UNIX_EPOCH + Duration::from_secs(secs),
                tz.clone(),
                "%Y-%m-%d %H:%M:%S %Z",
            )
        };
        // 2026-11-27 17:25:18 UTC and 2026-07-01 12:00:00 UTC.
        assert_eq!(
            fmt(1_795_800_318).as_deref(),
            Some("2026-11-27 18:25:18 CET")
        );
        assert_eq!(
            fmt(1_782_907_200).as_deref(),
            Some("2026-07-01 14:00:00 CEST")
        );
        // The epoch is shown; an instant beyond jiff's range is not (RFC 3339 UTC instead).
        assert!(fmt(0).is_some());
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(strftime_in(far, TimeZone::UTC, "%Y"), None);
        assert_eq!(format(far), crate::agent::state::status::rfc3339(far));
    }
}
