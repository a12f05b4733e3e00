//! Timestamps as JSON (the REST wire, event payloads): RFC 3339 in UTC exactly as chrono's
//! `Serialize` writes them (`Z`, a fraction of 0, 3, 6 or 9 digits), but written into a buffer at
//! once rather than one character at a time through `fmt` and the JSON escaper (a tenth of a
//! cached read's work). Read back (event payloads) the same way: that form is parsed directly,
//! anything else by chrono's own RFC 3339 parser, as chrono's `Deserialize` would.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

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

/// For `#[serde(deserialize_with = "timestamp::deserialize")]`: what chrono's `Deserialize`
/// accepts, with the same result.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
            match read(text.as_bytes()) {
                Some(at) => Ok(at),
                None => text.parse::<DateTime<FixedOffset>>().map(|at| at.with_timezone(&Utc)).map_err(E::custom),
            }
        }
    }
    deserializer.deserialize_str(Text)
}

/// For `Option<DateTime<Utc>>` fields (`null` is None).
pub fn deserialize_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    struct At(#[serde(deserialize_with = "deserialize")] DateTime<Utc>);
    Ok(Option::<At>::deserialize(deserializer)?.map(|at| at.0))
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]Z` (1 to 9 fraction digits, no leap second), or None.
fn read(text: &[u8]) -> Option<DateTime<Utc>> {
    let end = text.len().checked_sub(1)?;
    if text.get(end) != Some(&b'Z') || !(end == 19 || (21..=29).contains(&end)) {
        return None;
    }
    if [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')].iter().any(|&(at, c)| text[at] != c) {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        text[from..to].iter().try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    let mut nano = 0;
    if end > 19 {
        if text[19] != b'.' {
            return None;
        }
        nano = number(20, end)? * 10u32.pow(9 - (end - 20) as u32);
    }
    let date = NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?;
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if second > 59 {
        return None;
    }
    Some(Utc.from_utc_datetime(&date.and_hms_nano_opt(hour, minute, second, nano)?))
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
    fn timestamps_are_read_exactly_as_chrono_reads_them() {
        let read = |text: &str| -> Result<DateTime<Utc>, String> {
            deserialize(serde_json::Value::String(text.into())).map_err(|e| e.to_string())
        };
        let chrono = |text: &str| -> Result<DateTime<Utc>, String> {
            serde_json::from_value(serde_json::Value::String(text.into())).map_err(|e| e.to_string())
        };
        for text in [
            "2026-12-03T17:49:00Z",
            "2001-02-28T09:07:03.1Z",
            "2001-02-28T09:07:03.123Z",
            "2001-02-28T09:07:03.123456Z",
            "2001-02-28T09:07:03.123456789Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2016-12-31T23:59:60.5Z",
            "2026-12-03T17:49:00+01:00",
            "2026-12-03 17:49:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-03T24:00:00Z",
            "2026-12-03T17:49:00.Z",
            "2026-12-03T17:49:00.1234567890Z",
            "2026-12-03T17:4a:00Z",
            "+2026-12-03T17:49:00Z",
            "",
        ] {
            let (ours, theirs) = (read(text), chrono(text));
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{text:?}: {ours:?} against {theirs:?}");
            if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                assert_eq!(ours, theirs, "{text:?}");
            }
        }
        let at = Utc.with_ymd_and_hms(2001, 2, 28, 9, 7, 3).unwrap() + chrono::Duration::nanoseconds(123_456_000);
        assert_eq!(read(&ours(&at)), Ok(at));
    }

    #[test]
    fn a_missing_timestamp_is_null() {
        assert_eq!(serialize_opt(&None, serde_json::value::Serializer).unwrap(), serde_json::Value::Null);
    }
}
