//! `date_add(unit, value, ts)` and `date_diff(unit, ts1, ts2)`.

use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDateTime};
use datafusion::arrow::array::{Array, AsArray, Int64Builder, TimestampMillisecondBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{Timestamps, string_at, strings};
use super::types::{arity, coerce_integer, coerce_string, coerce_timestamp};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Fixed(i64), // milliseconds
    Months(i64),
}

fn parse_unit(function: &str, unit: &str) -> Result<Unit> {
    Ok(match unit.trim().to_ascii_lowercase().as_str() {
        "millisecond" => Unit::Fixed(1),
        "second" => Unit::Fixed(1000),
        "minute" => Unit::Fixed(60_000),
        "hour" => Unit::Fixed(3_600_000),
        "day" => Unit::Fixed(86_400_000),
        "week" => Unit::Fixed(7 * 86_400_000),
        "month" => Unit::Months(1),
        "quarter" => Unit::Months(3),
        "year" => Unit::Months(12),
        other => {
            return exec_err!(
                "{function}: unknown unit {other:?} (expected millisecond, second, minute, hour, day, week, month, quarter or year)"
            );
        }
    })
}

fn add_months(t: NaiveDateTime, months: i64) -> Option<NaiveDateTime> {
    let m = u32::try_from(months.unsigned_abs()).ok()?;
    if months >= 0 {
        t.checked_add_months(Months::new(m))
    } else {
        t.checked_sub_months(Months::new(m))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DateAdd {
    signature: Signature,
}

impl DateAdd {
    pub(super) fn new() -> Self {
        DateAdd {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DateAdd {
    fn name(&self) -> &str {
        "date_add"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[3])?;
        Ok(vec![
            coerce_string(self.name(), &args[0])?,
            coerce_integer(self.name(), &args[1])?,
            coerce_timestamp(self.name(), &args[2])?,
        ])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        coerce_timestamp(self.name(), &args[2])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let units = strings(&args.args[0], rows)?;
        let amounts = args.args[1].to_array(rows)?;
        let amounts = cast(&amounts, &DataType::Int64)?;
        let amounts = amounts.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let ts = Timestamps::new(self.name(), &args.args[2], rows)?;
        let tz = match args.return_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let mut out = TimestampMillisecondBuilder::with_capacity(rows).with_timezone_opt(tz);
        for i in 0..rows {
            let (Some(unit), false, false) = (
                string_at(&units, i),
                amounts.is_null(i),
                ts.values.is_null(i),
            ) else {
                out.append_null();
                continue;
            };
            let n = amounts.value(i);
            let value = match parse_unit(self.name(), unit)? {
                Unit::Fixed(ms) => n
                    .checked_mul(ms)
                    .and_then(|d| ts.values.value(i).checked_add(d)),
                Unit::Months(k) => n
                    .checked_mul(k)
                    .and_then(|m| ts.local(i).and_then(|t| add_months(t, m)))
                    .and_then(|t| ts.store(t)),
            };
            match value {
                Some(v) => out.append_value(v),
                None => return exec_err!("date_add: result out of range"),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DateDiff {
    signature: Signature,
}

impl DateDiff {
    pub(super) fn new() -> Self {
        DateDiff {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Whole months from `a` to `b`, truncated toward zero, as Trino counts them.
fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    let mut m = i64::from(b.year() - a.year()) * 12 + i64::from(b.month0()) - i64::from(a.month0());
    if m > 0 && add_months(a, m).is_some_and(|t| t > b) {
        m -= 1;
    } else if m < 0 && add_months(a, m).is_some_and(|t| t < b) {
        m += 1;
    }
    m
}

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        "date_diff"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[3])?;
        let a = coerce_timestamp(self.name(), &args[1])?;
        let b = coerce_timestamp(self.name(), &args[2])?;
        Ok(vec![coerce_string(self.name(), &args[0])?, a, b])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let units = strings(&args.args[0], rows)?;
        let a = Timestamps::new(self.name(), &args.args[1], rows)?;
        let b = Timestamps::new(self.name(), &args.args[2], rows)?;
        let mut out = Int64Builder::with_capacity(rows);
        for i in 0..rows {
            let (Some(unit), Some(ta), Some(tb)) = (string_at(&units, i), a.local(i), b.local(i))
            else {
                out.append_null();
                continue;
            };
            let v = match parse_unit(self.name(), unit)? {
                Unit::Fixed(ms) => match b.values.value(i).checked_sub(a.values.value(i)) {
                    Some(d) => d / ms,
                    None => return exec_err!("date_diff: result out of range"),
                },
                Unit::Months(k) => months_between(ta, tb) / k,
            };
            out.append_value(v);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn months_between_truncates() {
        assert_eq!(
            months_between(t("2026-01-31 00:00:00"), t("2026-02-28 00:00:00")),
            1
        );
        assert_eq!(
            months_between(t("2026-01-15 00:00:00"), t("2026-03-15 00:00:00")),
            2
        );
        assert_eq!(
            months_between(t("2026-03-15 00:00:00"), t("2026-01-16 00:00:00")),
            -1
        );
    }
}
