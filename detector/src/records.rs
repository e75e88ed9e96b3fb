//! The records that flow through the pipeline, as JSON lines (one record per line, `\n`-terminated).
//!
//! - [`Reading`]: `{"deviceId":"aaaa","sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01.123"}`
//!   (UTC, millisecond precision: Athena's TIMESTAMP format, space not `T`).
//! - [`ScoredReading`]: the reading plus `ANOMALY_SCORE` and, where enabled,
//!   `ANOMALY_EXPLANATION`, as Kinesis Data Analytics' RANDOM_CUT_FOREST_WITH_EXPLANATION wrote.
//! - [`Alert`]: the scored reading plus the threshold, the time of the alert and the subject.
//!
//! This module depends on serde, serde_json and chrono only.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// Subject of every alert, as the seed's Lambda sent it.
pub const ALERT_SUBJECT: &str = "Anomaly Detected!";

/// `YYYY-MM-DD HH:MM:SS.mmm`, the reading timestamp format.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// Formats a UTC time as a reading timestamp.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format(TIMESTAMP_FORMAT).to_string()
}

/// Parses a reading timestamp (`.mmm` optional, as Athena accepts).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// One sensor reading from one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    #[serde(rename = "deviceId")]
    pub device_id: String,
    #[serde(rename = "sensorReading")]
    pub sensor_reading: i64,
    #[serde(rename = "readingTimestamp")]
    pub reading_timestamp: String,
}

/// Which way a field pushed the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "HIGH")]
    High,
    #[serde(rename = "LOW")]
    Low,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::High => "HIGH",
            Direction::Low => "LOW",
        })
    }
}

/// One field's share of the score, as KDA's ANOMALY_EXPLANATION gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// This field's part of ANOMALY_SCORE; the parts of all fields sum to the score.
    #[serde(rename = "ATTRIBUTION_SCORE")]
    pub attribution_score: f64,
    /// 0..=1: how one-sided the attribution is (|high − low| / (high + low)).
    #[serde(rename = "STRENGTH")]
    pub strength: f64,
    #[serde(rename = "DIRECTION")]
    pub direction: Direction,
}

/// Field name (`sensorReading`) → its attribution.
pub type Explanation = BTreeMap<String, Attribution>;

/// A reading with its anomaly score: a record of the anomaly stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredReading {
    #[serde(flatten)]
    pub reading: Reading,
    #[serde(rename = "ANOMALY_SCORE")]
    pub anomaly_score: f64,
    #[serde(
        rename = "ANOMALY_EXPLANATION",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation: Option<Explanation>,
}

/// A scored reading above the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(flatten)]
    pub scored: ScoredReading,
    pub threshold: f64,
    /// When the alert was raised (same format as reading timestamps).
    #[serde(rename = "alertTime")]
    pub alert_time: String,
    pub subject: String,
}

/// A record that could not be decoded: says what was expected, never panics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected a {kind} as JSON ({example}): {reason}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub example: &'static str,
    pub reason: String,
}

fn decode<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    kind: &'static str,
    example: &'static str,
) -> Result<T, DecodeError> {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    serde_json::from_slice(trimmed).map_err(|e| DecodeError {
        kind,
        example,
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (string keys, finite or not, numbers).
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}

impl Reading {
    /// One JSON line, `\n`-terminated.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(
            bytes,
            "reading",
            r#"{"deviceId":"aaaa","sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01.123"}"#,
        )
    }
}

impl ScoredReading {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(
            bytes,
            "scored reading",
            r#"{"deviceId":"aaaa","sensorReading":3,"readingTimestamp":"…","ANOMALY_SCORE":0.8}"#,
        )
    }

    /// Short text for the Scores pane: `sensorReading HIGH 7.20`.
    pub fn explanation_summary(&self) -> String {
        let Some(ex) = &self.explanation else {
            return String::new();
        };
        ex.iter()
            .max_by(|a, b| a.1.attribution_score.total_cmp(&b.1.attribution_score))
            .map(|(field, a)| format!("{field} {} {:.2}", a.direction, a.attribution_score))
            .unwrap_or_default()
    }
}

impl Alert {
    pub fn new(scored: ScoredReading, threshold: f64, at: DateTime<Utc>) -> Self {
        Alert {
            scored,
            threshold,
            alert_time: format_timestamp(at),
            subject: ALERT_SUBJECT.to_string(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(
            bytes,
            "alert",
            r#"{"deviceId":"…","ANOMALY_SCORE":7.1,"threshold":4.0,"alertTime":"…","subject":"Anomaly Detected!"}"#,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reading() -> Reading {
        Reading {
            device_id: "aaaa".into(),
            sensor_reading: 3,
            reading_timestamp: "2026-11-30 05:00:01.123".into(),
        }
    }

    #[test]
    fn reading_has_the_seed_shape() {
        assert_eq!(
            reading().encode(),
            b"{\"deviceId\":\"aaaa\",\"sensorReading\":3,\"readingTimestamp\":\"2026-11-30 05:00:01.123\"}\n"
        );
        assert_eq!(Reading::decode(&reading().encode()).unwrap(), reading());
    }

    #[test]
    fn scored_reading_adds_score_and_explanation() {
        let mut ex = Explanation::new();
        ex.insert(
            "sensorReading".into(),
            Attribution {
                attribution_score: 7.2,
                strength: 1.0,
                direction: Direction::High,
            },
        );
        let s = ScoredReading {
            reading: reading(),
            anomaly_score: 7.2,
            explanation: Some(ex),
        };
        let line = String::from_utf8(s.encode()).unwrap();
        assert_eq!(
            line,
            "{\"deviceId\":\"aaaa\",\"sensorReading\":3,\"readingTimestamp\":\"2026-11-30 05:00:01.123\",\"ANOMALY_SCORE\":7.2,\"ANOMALY_EXPLANATION\":{\"sensorReading\":{\"ATTRIBUTION_SCORE\":7.2,\"STRENGTH\":1.0,\"DIRECTION\":\"HIGH\"}}}\n"
        );
        assert_eq!(ScoredReading::decode(line.as_bytes()).unwrap(), s);
        assert_eq!(s.explanation_summary(), "sensorReading HIGH 7.20");
    }

    #[test]
    fn alert_carries_subject_threshold_and_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 5, 0, 2).unwrap();
        let a = Alert::new(
            ScoredReading {
                reading: reading(),
                anomaly_score: 5.0,
                explanation: None,
            },
            4.0,
            at,
        );
        let line = String::from_utf8(a.encode()).unwrap();
        assert!(line.contains("\"threshold\":4.0"), "{line}");
        assert!(
            line.contains("\"alertTime\":\"2026-11-30 05:00:02.000\""),
            "{line}"
        );
        assert!(line.contains("\"subject\":\"Anomaly Detected!\""), "{line}");
        assert_eq!(Alert::decode(line.as_bytes()).unwrap(), a);
    }

    #[test]
    fn bad_records_say_what_was_expected() {
        let e = Reading::decode(b"{\"deviceId\":\"aaaa\"}").unwrap_err();
        assert!(
            e.to_string().starts_with("expected a reading as JSON ("),
            "{e}"
        );
        assert!(
            e.to_string().contains("missing field `sensorReading`"),
            "{e}"
        );
        assert!(Reading::decode(b"\xff\xfe").is_err());
        assert!(
            Reading::decode(
                b"{\"deviceId\":\"a\",\"sensorReading\":1e999,\"readingTimestamp\":\"x\"}"
            )
            .is_err()
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 5, 0, 1).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(format_timestamp(t), "2026-11-30 05:00:01.123");
        assert_eq!(parse_timestamp("2026-11-30 05:00:01.123"), Some(t));
        assert!(parse_timestamp("2026-11-30T05:00:01").is_none());
    }
}
