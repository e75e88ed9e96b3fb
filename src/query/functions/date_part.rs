//! `year(ts)`, `hour(ts)`, …: one field of a timestamp as a bigint, as Trino gives it.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::Int64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::Timestamps;
use super::types::{arity, coerce_timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum DatePart {
    Year,
    Quarter,
    Month,
    Week,
    Day,
    DayOfWeek,
    DayOfYear,
    Hour,
    Minute,
    Second,
    Millisecond,
    YearOfWeek,
}

impl DatePart {
    pub(super) const ALL: [DatePart; 12] = [
        DatePart::Year,
        DatePart::Quarter,
        DatePart::Month,
        DatePart::Week,
        DatePart::Day,
        DatePart::DayOfWeek,
        DatePart::DayOfYear,
        DatePart::Hour,
        DatePart::Minute,
        DatePart::Second,
        DatePart::Millisecond,
        DatePart::YearOfWeek,
    ];

    fn name(self) -> &'static str {
        match self {
            DatePart::Year => "year",
            DatePart::Quarter => "quarter",
            DatePart::Month => "month",
            DatePart::Week => "week",
            DatePart::Day => "day",
            DatePart::DayOfWeek => "day_of_week",
            DatePart::DayOfYear => "day_of_year",
            DatePart::Hour => "hour",
            DatePart::Minute => "minute",
            DatePart::Second => "second",
            DatePart::Millisecond => "millisecond",
            DatePart::YearOfWeek => "year_of_week",
        }
    }

    fn aliases(self) -> Vec<String> {
        let names: &[&str] = match self {
            DatePart::Week => &["week_of_year"],
            DatePart::Day => &["day_of_month"],
            DatePart::DayOfWeek => &["dow"],
            DatePart::DayOfYear => &["doy"],
            DatePart::YearOfWeek => &["yow"],
            _ => &[],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    fn of(self, t: &NaiveDateTime) -> i64 {
        i64::from(match self {
            DatePart::Year => t.year(),
            DatePart::Quarter => (t.month0() / 3 + 1) as i32,
            DatePart::Month => t.month() as i32,
            DatePart::Week => t.iso_week().week() as i32,
            DatePart::Day => t.day() as i32,
            DatePart::DayOfWeek => t.weekday().number_from_monday() as i32,
            DatePart::DayOfYear => t.ordinal() as i32,
            DatePart::Hour => t.hour() as i32,
            DatePart::Minute => t.minute() as i32,
            DatePart::Second => t.second() as i32,
            DatePart::Millisecond => (t.nanosecond() / 1_000_000 % 1000) as i32,
            DatePart::YearOfWeek => t.iso_week().year(),
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DatePartFn {
    part: DatePart,
    aliases: Vec<String>,
    signature: Signature,
}

impl DatePartFn {
    pub(super) fn new(part: DatePart) -> Self {
        DatePartFn {
            part,
            aliases: part.aliases(),
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DatePartFn {
    fn name(&self) -> &str {
        self.part.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[1])?;
        Ok(vec![coerce_timestamp(self.name(), &args[0])?])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let ts = Timestamps::new(self.name(), &args.args[0], rows)?;
        let mut out = Int64Builder::with_capacity(rows);
        for i in 0..rows {
            out.append_option(ts.local(i).map(|t| self.part.of(&t)));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
