//! `from_iso8601_timestamp(s)` and `from_iso8601_date(s)`.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Date32Builder, TimestampMillisecondBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{string_at, strings};
use super::types::{arity, coerce_string};

/// The timezone our timestamp-with-zone results carry (the same one `now()` uses).
const UTC: &str = "+00:00";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct FromIso8601 {
    date_only: bool,
    signature: Signature,
}

impl FromIso8601 {
    pub(super) fn new(date_only: bool) -> Self {
        FromIso8601 {
            date_only,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn two(s: &str) -> Option<u32> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY[-MM[-DD]]`.
fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.split('-');
    let year = parts.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month = parts.next().map_or(Some(1), two)?;
    let day = parts.next().map_or(Some(1), two)?;
    if parts.next().is_some() {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month, day)
}

/// An ISO 8601 timestamp (`2026-11-30T04:40:00Z`, `2026-11-30T04:40:00.123+01:00`,
/// `2026-11-30T04`, `2026-11-30`…) as UTC milliseconds; no zone means UTC (Athena's session
/// zone).
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = match s.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (s, None),
    };
    let date = parse_iso_date(date)?;
    let Some(rest) = rest else {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    };
    // Split off the zone: `Z`, `+HH[:MM]`, `-HH[:MM]`, `+HHMM`.
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0i64)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let zone = rest[i + 1..].replace(':', "");
        let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
        let (h, m) = match zone.len() {
            2 => (two(&zone)?, 0),
            4 => (two(&zone[..2])?, two(&zone[2..])?),
            _ => return None,
        };
        (&rest[..i], sign * i64::from(h * 3600 + m * 60))
    } else {
        (rest, 0)
    };
    let (hms, frac) = match time.split_once(['.', ',']) {
        Some((a, f)) => (a, Some(f)),
        None => (time, None),
    };
    let mut fields = hms.split(':');
    let hour = two(fields.next()?)?;
    let minute = fields.next().map_or(Some(0), two)?;
    let second = fields.next().map_or(Some(0), two)?;
    if fields.next().is_some() {
        return None;
    }
    let millis = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse().ok()?
        }
        Some(_) => return None,
    };
    let local = date.and_hms_milli_opt(hour, minute, second, millis)?;
    Some(local.and_utc().timestamp_millis() - offset_secs * 1000)
}

impl ScalarUDFImpl for FromIso8601 {
    fn name(&self) -> &str {
        if self.date_only {
            "from_iso8601_date"
        } else {
            "from_iso8601_timestamp"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[1])?;
        Ok(vec![coerce_string(self.name(), &args[0])?])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(if self.date_only {
            DataType::Date32
        } else {
            DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let input = strings(&args.args[0], rows)?;
        let bad = |s: &str| {
            DataFusionError::Execution(format!(
                "{}: cannot parse {s:?} as ISO 8601 (like 2026-11-30T04:40:00Z)",
                self.name()
            ))
        };
        if self.date_only {
            let mut out = Date32Builder::with_capacity(rows);
            for i in 0..rows {
                match string_at(&input, i) {
                    None => out.append_null(),
                    Some(s) => {
                        let d = parse_iso_date(s.trim()).ok_or_else(|| bad(s))?;
                        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                        out.append_value((d - epoch).num_days() as i32);
                    }
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        } else {
            let mut out = TimestampMillisecondBuilder::with_capacity(rows).with_timezone(UTC);
            for i in 0..rows {
                match string_at(&input, i) {
                    None => out.append_null(),
                    Some(s) => out.append_value(parse_iso8601_ms(s).ok_or_else(|| bad(s))?),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn iso8601_timestamps() {
        let ms = |s| parse_iso8601_ms(s);
        let base = t("2026-11-30 04:40:00").and_utc().timestamp_millis();
        assert_eq!(ms("2026-11-30T04:40:00Z"), Some(base));
        assert_eq!(ms("2026-11-30T04:40:00"), Some(base));
        assert_eq!(ms("2026-11-30T05:40:00+01:00"), Some(base));
        assert_eq!(ms("2026-11-30T03:40-0100"), Some(base));
        assert_eq!(ms("2026-11-30T04:40:00.5Z"), Some(base + 500));
        assert_eq!(ms("2026-11-30T04"), Some(base - 40 * 60_000));
        assert_eq!(
            ms("2026-11-30"),
            Some(t("2026-11-30 00:00:00").and_utc().timestamp_millis())
        );
        assert_eq!(ms("2026-11-30 04:40:00"), None);
        assert_eq!(ms("yesterday"), None);
    }
}
