//! Decoding one NDJSON line into a reading (keys matched case-insensitively, as the OpenX JSON
//! SerDe does); a line that is not a reading decodes to `None`.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// A decoded reading.
#[derive(Debug, PartialEq)]
pub(crate) struct Row<'a> {
    pub device: Cow<'a, str>,
    pub reading: i16,
    pub timestamp_ms: i64,
}

/// Decodes one line, or `None` if it is not a reading.
pub(crate) fn decode_reading(line: &[u8]) -> Option<Row<'_>> {
    let raw: RawReading<'_> = serde_json::from_slice(line).ok()?;
    let reading = i16::try_from(raw.reading?).ok()?;
    let timestamp_ms = parse_timestamp_ms(raw.timestamp?.as_ref())?;
    Some(Row {
        device: raw.device?,
        reading,
        timestamp_ms,
    })
}

/// `YYYY-MM-DD HH:MM:SS[.f…]` (Athena's TIMESTAMP text) as milliseconds since the epoch;
/// digits past the millisecond are truncated.
pub(crate) fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = num(0..4)? as i32;
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut millis = 0u32;
    if b.len() > 19 {
        let frac = &b[20..];
        if b[19] != b'.' || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        if !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
        }
    }
    let t = NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_milli_opt(hour, minute, second, millis)?;
    Some(t.and_utc().timestamp_millis())
}

/// The fields of a line, keys matched case-insensitively; others ignored.
#[derive(Default)]
struct RawReading<'a> {
    device: Option<Cow<'a, str>>,
    reading: Option<i64>,
    timestamp: Option<Cow<'a, str>>,
}

enum Key {
    Device,
    Reading,
    Timestamp,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Key, E> {
                Ok(if v.eq_ignore_ascii_case("deviceid") {
                    Key::Device
                } else if v.eq_ignore_ascii_case("sensorreading") {
                    Key::Reading
                } else if v.eq_ignore_ascii_case("readingtimestamp") {
                    Key::Timestamp
                } else {
                    Key::Other
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A JSON string, borrowed from the line when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// A JSON integer (a float, string or null is not one).
struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Integer, E> {
                Ok(Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Integer, E> {
                i64::try_from(v)
                    .map(Integer)
                    .map_err(|_| E::custom("integer out of range"))
            }
        }
        d.deserialize_i64(IntVisitor)
    }
}

impl<'de> Deserialize<'de> for RawReading<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct LineVisitor;
        impl<'de> Visitor<'de> for LineVisitor {
            type Value = RawReading<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut raw = RawReading::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Device => raw.device = Some(map.next_value::<Text<'de>>()?.0),
                        Key::Reading => raw.reading = Some(map.next_value::<Integer>()?.0),
                        Key::Timestamp => {
                            raw.timestamp = Some(map.next_value::<Text<'de>>()?.0);
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(LineVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_readings_and_rejects_the_rest() {
        let ok = decode_reading(
            br#"{"deviceId":"aaaa","sensorReading":-3,"readingTimestamp":"2026-11-30 05:00:01.123","ANOMALY_SCORE":0.7}"#,
        )
        .unwrap();
        assert_eq!(ok.device, "aaaa");
        assert_eq!(ok.reading, -3);
        assert_eq!(ok.timestamp_ms, 1_796_014_801_123);
        // Keys in any case, as the OpenX SerDe reads them; escapes are fine.
        let ok = decode_reading(
            br#"{"DEVICEID":"a\"b","sensorreading":7,"ReadingTimestamp":"2026-11-30 05:00:01"}"#,
        )
        .unwrap();
        assert_eq!(ok.device, "a\"b");
        assert_eq!(ok.reading, 7);
        for bad in [
            &b"{not json"[..],
            br#"{"deviceId":"a","readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":"3","readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":3.5,"readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":40000,"readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":3,"readingTimestamp":"2026-11-30T05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":3,"readingTimestamp":"2026-13-30 05:00:01"}"#,
            br#"{"deviceId":null,"sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"[1,2,3]"#,
            br#"{"deviceId":"a","sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01"} x"#,
        ] {
            assert!(
                decode_reading(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn timestamps_parse_to_the_millisecond() {
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01.123456"), Some(1123));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01."), None);
        assert_eq!(parse_timestamp_ms("1970-01-01 24:00:00"), None);
        assert_eq!(parse_timestamp_ms("1970-02-30 00:00:00"), None);
    }
}
