//! RFC 3339 UTC timestamps, independent of the local time zone.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(seconds: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(seconds).ok()?.format(&Rfc3339).ok()
}

/// Parses an RFC 3339 timestamp to seconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_in_utc_with_z_suffix() {
        assert_eq!(super::rfc3339(1_700_000_000).as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(super::parse_rfc3339("2023-11-15T03:43:20+05:30"), Some(1_700_000_000));
    }
}
