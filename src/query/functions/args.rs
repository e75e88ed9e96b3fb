//! The functions' arguments as they run: timestamps read in their zone, strings.

use chrono::{DateTime, NaiveDateTime, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::ColumnarValue;

use super::types::coerce_timestamp;

/// A timestamp argument as milliseconds plus its zone.
pub(super) struct Timestamps {
    pub(super) values: TimestampMillisecondArray,
    tz: Option<Tz>,
}

impl Timestamps {
    pub(super) fn new(function: &str, arg: &ColumnarValue, rows: usize) -> Result<Self> {
        let array = arg.to_array(rows)?;
        let target = coerce_timestamp(function, array.data_type())?;
        let array = cast(&array, &target)?;
        let tz = match &target {
            DataType::Timestamp(_, Some(tz)) => Some(tz.parse::<Tz>()?),
            _ => None,
        };
        Ok(Timestamps {
            values: array.as_primitive().clone(),
            tz,
        })
    }

    /// The wall-clock time of row `i` in its zone, `None` for NULL.
    pub(super) fn local(&self, i: usize) -> Option<NaiveDateTime> {
        if self.values.is_null(i) {
            return None;
        }
        let utc = DateTime::from_timestamp_millis(self.values.value(i))?;
        Some(match &self.tz {
            Some(tz) => utc.with_timezone(tz).naive_local(),
            None => utc.naive_utc(),
        })
    }

    /// Milliseconds of wall-clock time back to a stored value (the inverse of `local`).
    pub(super) fn store(&self, local: NaiveDateTime) -> Option<i64> {
        match &self.tz {
            Some(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.timestamp_millis()),
            None => Some(local.and_utc().timestamp_millis()),
        }
    }
}

/// A string argument, constant or per row.
pub(super) fn strings(arg: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let array = arg.to_array(rows)?;
    Ok(cast(&array, &DataType::Utf8)?)
}

pub(super) fn string_at(array: &ArrayRef, i: usize) -> Option<&str> {
    let s = array.as_string::<i32>();
    (!s.is_null(i)).then(|| s.value(i))
}
