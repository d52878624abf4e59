//! IoT Hub's ISO-8601 UTC timestamps: `2015-10-10T23:35:19.9774002Z` (seven fractional digits,
//! .NET's "round-trip" precision).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Formats `t` as UTC with exactly seven fractional digits and a `Z`.
pub fn format_utc(t: SystemTime) -> String {
    let dt = OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.nanosecond() / 100
    )
}

/// Parses an RFC 3339 / ISO-8601 timestamp with any number of fractional digits. A time
/// without a zone (as older IoT Hub responses write `0001-01-01T00:00:00`) is taken as UTC.
pub fn parse_utc(s: &str) -> Result<SystemTime> {
    let s = s.trim();
    let with_zone;
    let text = if s.ends_with('Z') || s.ends_with('z') || has_offset(s) {
        s
    } else {
        with_zone = format!("{s}Z");
        &with_zone
    };
    let dt = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| Error::invalid_argument(format!("'{s}' is not an ISO-8601 time: {e}")))?;
    let nanos = dt.unix_timestamp_nanos();
    Ok(if nanos >= 0 {
        UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(nanos.unsigned_abs() as u64)
    })
}

fn has_offset(s: &str) -> bool {
    let tail = s.get(s.len().saturating_sub(6)..).unwrap_or("");
    tail.len() == 6
        && (tail.starts_with('+') || tail.starts_with('-'))
        && tail.as_bytes()[3] == b':'
}

/// Milliseconds since the Unix epoch (negative before it), as AMQP timestamps count.
pub fn to_unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The time `millis` milliseconds after (or before) the Unix epoch.
pub fn from_unix_millis(millis: i64) -> SystemTime {
    if millis >= 0 {
        UNIX_EPOCH + Duration::from_millis(millis as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_fractional_digits_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_444_520_119, 977_400_200);
        assert_eq!(format_utc(t), "2015-10-10T23:35:19.9774002Z");
        assert_eq!(parse_utc("2015-10-10T23:35:19.9774002Z").unwrap(), t);
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00.0000000Z");
    }

    #[test]
    fn zone_less_and_offset_times_parse() {
        assert_eq!(
            parse_utc("1970-01-01T00:00:01").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1)
        );
        assert_eq!(
            parse_utc("1970-01-01T01:00:01+01:00").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1)
        );
        assert!(parse_utc("yesterday").is_err());
    }

    #[test]
    fn millis_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_unix_millis(t), 1_700_000_000_123);
        assert_eq!(from_unix_millis(1_700_000_000_123), t);
    }
}
