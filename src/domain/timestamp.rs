//! Timestamps on the REST wire: RFC 3339 in UTC exactly as chrono's `Serialize` writes them
//! (`Z`, a fraction of 0, 3, 6 or 9 digits), but written into a buffer at once rather than one
//! character at a time through `fmt` and the JSON escaper (a tenth of a cached read's work).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// For `#[serde(serialize_with = "timestamp::serialize")]`.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match write(at, &mut buf).and_then(|n| std::str::from_utf8(&buf[..n]).ok()) {
        Some(text) => serializer.serialize_str(text),
        None => at.serialize(serializer),
    }
}

/// For `Option<DateTime<Utc>>` fields (None is `null`).
pub fn serialize_opt<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// `at` as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`; its length, or None for a year
/// outside 0..=9999 (chrono writes those with a sign).
fn write(at: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    let naive = at.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (mut second, mut nano) = (time.second(), time.nanosecond());
    if nano >= 1_000_000_000 {
        // A leap second: chrono shows it as :60.
        second += 1;
        nano -= 1_000_000_000;
    }
    let year = year as u32;
    for (at, value) in [
        (0, year / 100),
        (2, year % 100),
        (5, date.month()),
        (8, date.day()),
        (11, time.hour()),
        (14, time.minute()),
        (17, second),
    ] {
        buf[at] = b'0' + (value / 10) as u8;
        buf[at + 1] = b'0' + (value % 10) as u8;
    }
    buf[4] = b'-';
    buf[7] = b'-';
    buf[10] = b'T';
    buf[13] = b':';
    buf[16] = b':';
    let (digits, mut fraction) = match nano {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1_000 == 0 => (6, n / 1_000),
        n => (9, n),
    };
    let mut end = 19;
    if digits > 0 {
        buf[19] = b'.';
        end = 20 + digits;
        for slot in buf[20..end].iter_mut().rev() {
            *slot = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
    }
    buf[end] = b'Z';
    Some(end + 1)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn ours(at: &DateTime<Utc>) -> String {
        serialize(at, serde_json::value::Serializer).unwrap().as_str().unwrap().to_string()
    }

    #[test]
    fn timestamps_are_written_exactly_as_chrono_writes_them() {
        let mut cases = vec![
            Utc.with_ymd_and_hms(2026, 12, 3, 17, 49, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 15, 8, 5, 9).unwrap(),
        ];
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        cases.push(Utc.from_utc_datetime(&leap));
        for nanos in [1, 7, 999, 1_000, 20_000, 123_456_000, 5_000_000, 100_000_000, 999_999_999, 123_456_789] {
            cases.push(Utc.with_ymd_and_hms(2001, 2, 28, 9, 7, 3).unwrap() + chrono::Duration::nanoseconds(nanos));
        }
        for at in cases {
            assert_eq!(ours(&at), serde_json::to_value(at).unwrap().as_str().unwrap(), "{at:?}");
        }
    }

    #[test]
    fn a_missing_timestamp_is_null() {
        assert_eq!(serialize_opt(&None, serde_json::value::Serializer).unwrap(), serde_json::Value::Null);
    }
}
