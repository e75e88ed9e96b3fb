//! Trino (Athena) functions that DataFusion lacks or spells differently, so Athena SQL runs as
//! written:
//!
//! | Trino | here |
//! |---|---|
//! | `date_format(ts, '%Y-%m-%d %H:%i')` | our UDF with Trino's MySQL-style specifiers (replaces DataFusion's chrono-style alias of `to_char`) |
//! | `from_iso8601_timestamp('2026-11-30T04:40:00Z')`, `from_iso8601_date('2026-11-30')` | our UDFs (timestamp in UTC) |
//! | `approx_percentile(x, 0.99)` | DataFusion's `approx_percentile_cont` t-digest (same argument order), returning bigint for integer input and double otherwise, as Trino does |
//! | `year`, `quarter`, `month`, `week`, `day`, `day_of_week`, `day_of_year`, `hour`, `minute`, `second`, `millisecond`, `year_of_week` (and `day_of_month`, `dow`, `doy`, `week_of_year`, `yow`) | our UDFs, bigint like Trino |
//! | `date_add(unit, n, ts)`, `date_diff(unit, ts1, ts2)` | our UDFs |
//! | `to_unixtime(ts)` | our UDF returning double seconds, as Trino does (DataFusion's returns bigint) |
//! | `regexp_extract(s, pattern[, group])` | our UDF |
//!
//! Everything else (`date_trunc`, `regexp_like`, `CAST(x AS varchar)`, `current_timestamp -
//! interval '1' hour`, `approx_distinct`, `count`, `avg`…) is DataFusion's own.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::context::SessionContext;
use datafusion::functions_aggregate::approx_percentile_cont::{
    ApproxPercentileAccumulator, approx_percentile_cont_udaf,
};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

/// The timezone our timestamp-with-zone results carry (the same one `now()` uses).
const UTC: &str = "+00:00";

/// Registers every function of this module on `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(DateFormat::new()));
    ctx.register_udf(ScalarUDF::from(FromIso8601::new(false)));
    ctx.register_udf(ScalarUDF::from(FromIso8601::new(true)));
    for part in DatePart::ALL {
        ctx.register_udf(ScalarUDF::from(DatePartFn::new(part)));
    }
    ctx.register_udf(ScalarUDF::from(DateAdd::new()));
    ctx.register_udf(ScalarUDF::from(DateDiff::new()));
    ctx.register_udf(ScalarUDF::from(ToUnixtime::new()));
    ctx.register_udf(ScalarUDF::from(RegexpExtract::new()));
    ctx.register_udaf(AggregateUDF::from(ApproxPercentile::new()));
}

/// Athena's name for an Arrow type, for messages and result headers.
pub fn athena_type(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 => "smallint".into(),
        DataType::UInt16 => "integer".into(),
        DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "varbinary".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::YearMonth) => {
            "interval year to month".into()
        }
        DataType::Interval(_) | DataType::Duration(_) => "interval day to second".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array({})", athena_type(f.data_type())),
        DataType::Struct(fields) => format!(
            "row({})",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), athena_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map({}, {})",
                athena_type(kv[0].data_type()),
                athena_type(kv[1].data_type())
            ),
            _ => "map".into(),
        },
        DataType::Dictionary(_, v) => athena_type(v),
        other => other.to_string().to_lowercase(),
    }
}

/// Coerces a timestamp-like argument to `Timestamp(Millisecond, zone)`.
fn coerce_timestamp(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
        DataType::Date32 | DataType::Date64 | DataType::Null => {
            Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
        }
        DataType::Dictionary(_, v) => coerce_timestamp(function, v),
        other => plan_err!(
            "{function} expects a timestamp, got {} (use CAST(x AS timestamp) or from_iso8601_timestamp(x))",
            athena_type(other)
        ),
    }
}

fn coerce_string(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8)
        }
        DataType::Dictionary(_, v) => coerce_string(function, v),
        other => plan_err!("{function} expects varchar, got {}", athena_type(other)),
    }
}

fn coerce_integer(function: &str, t: &DataType) -> Result<DataType> {
    if t.is_integer() || *t == DataType::Null {
        Ok(DataType::Int64)
    } else {
        plan_err!("{function} expects an integer, got {}", athena_type(t))
    }
}

fn arity(function: &str, args: &[DataType], allowed: &[usize]) -> Result<()> {
    if allowed.contains(&args.len()) {
        Ok(())
    } else {
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        plan_err!(
            "{function} takes {} arguments, got {}",
            list.join(" or "),
            args.len()
        )
    }
}

/// A timestamp argument as milliseconds plus its zone.
struct Timestamps {
    values: TimestampMillisecondArray,
    tz: Option<Tz>,
}

impl Timestamps {
    fn new(function: &str, arg: &ColumnarValue, rows: usize) -> Result<Self> {
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
    fn local(&self, i: usize) -> Option<NaiveDateTime> {
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
    fn store(&self, local: NaiveDateTime) -> Option<i64> {
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
fn strings(arg: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let array = arg.to_array(rows)?;
    Ok(cast(&array, &DataType::Utf8)?)
}

fn string_at(array: &ArrayRef, i: usize) -> Option<&str> {
    let s = array.as_string::<i32>();
    (!s.is_null(i)).then(|| s.value(i))
}

// ---------------------------------------------------------------------------------------------
// date_format

/// Trino's `date_format(timestamp, format)` with MySQL-style specifiers.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateFormat {
    signature: Signature,
}

impl DateFormat {
    fn new() -> Self {
        DateFormat {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// One piece of a parsed MySQL-style format.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Spec(char),
}

/// Specifiers Trino documents as unsupported; we refuse them the same way.
const UNSUPPORTED_SPECIFIERS: &str = "DUuVwX";

fn parse_format(format: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        match chars.next() {
            None => text.push('%'),
            Some(s) if "abcdefHhIijklMmprSsTvWxYy".contains(s) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Spec(s));
            }
            Some(s) if UNSUPPORTED_SPECIFIERS.contains(s) => {
                return exec_err!(
                    "date_format: the specifier %{s} is not supported (Athena does not support it either)"
                );
            }
            // `%%` is a percent sign; `%x` for any other x is x.
            Some(s) => text.push(s),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn write_formatted(out: &mut String, t: &NaiveDateTime, pieces: &[Piece]) {
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let am_pm = if t.hour() < 12 { "AM" } else { "PM" };
    let millis = t.nanosecond() / 1_000_000 % 1000;
    let month = MONTHS[t.month0() as usize];
    let weekday = WEEKDAYS[t.weekday().num_days_from_monday() as usize];
    for piece in pieces {
        // Writing to a String cannot fail.
        let _ = match piece {
            Piece::Text(s) => out.write_str(s),
            Piece::Spec(c) => match c {
                'a' => out.write_str(&weekday[..3]),
                'b' => out.write_str(&month[..3]),
                'c' => write!(out, "{}", t.month()),
                'd' => write!(out, "{:02}", t.day()),
                'e' => write!(out, "{}", t.day()),
                'f' => write!(out, "{:06}", millis * 1000),
                'H' => write!(out, "{:02}", t.hour()),
                'h' | 'I' => write!(out, "{hour12:02}"),
                'i' => write!(out, "{:02}", t.minute()),
                'j' => write!(out, "{:03}", t.ordinal()),
                'k' => write!(out, "{}", t.hour()),
                'l' => write!(out, "{hour12}"),
                'M' => out.write_str(month),
                'm' => write!(out, "{:02}", t.month()),
                'p' => out.write_str(am_pm),
                'r' => write!(
                    out,
                    "{hour12:02}:{:02}:{:02} {am_pm}",
                    t.minute(),
                    t.second()
                ),
                'S' | 's' => write!(out, "{:02}", t.second()),
                'T' => write!(out, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
                'v' => write!(out, "{:02}", t.iso_week().week()),
                'W' => out.write_str(weekday),
                'x' => write!(out, "{:04}", t.iso_week().year()),
                'Y' => write!(out, "{:04}", t.year()),
                'y' => write!(out, "{:02}", t.year().rem_euclid(100)),
                other => out.write_char(*other),
            },
        };
    }
}

/// Formats `t` with a Trino `date_format` pattern (for tests and callers outside SQL).
pub fn trino_date_format(t: &NaiveDateTime, format: &str) -> Result<String> {
    let mut out = String::new();
    write_formatted(&mut out, t, &parse_format(format)?);
    Ok(out)
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[2])?;
        Ok(vec![
            coerce_timestamp(self.name(), &args[0])?,
            coerce_string(self.name(), &args[1])?,
        ])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let ts = Timestamps::new(self.name(), &args.args[0], rows)?;
        let constant = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(f))) => Some(parse_format(f)?),
            _ => None,
        };
        let formats = strings(&args.args[1], rows)?;
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        let mut buf = String::new();
        let mut last: Option<(String, Vec<Piece>)> = None;
        for i in 0..rows {
            let (Some(t), Some(format)) = (ts.local(i), string_at(&formats, i)) else {
                out.append_null();
                continue;
            };
            let pieces = match &constant {
                Some(p) => p,
                None => {
                    if last.as_ref().is_none_or(|(f, _)| f != format) {
                        last = Some((format.to_string(), parse_format(format)?));
                    }
                    &last.as_ref().map(|(_, p)| p).cloned().unwrap_or_default()
                }
            };
            buf.clear();
            write_formatted(&mut buf, &t, pieces);
            out.append_value(&buf);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

// ---------------------------------------------------------------------------------------------
// approx_percentile(x, p)

/// Trino's `approx_percentile(x, p)`: DataFusion's t-digest (`approx_percentile_cont`), with
/// Trino's result type: bigint for integer input (the estimate rounded), double otherwise.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxPercentile {
    signature: Signature,
}

impl ApproxPercentile {
    fn new() -> Self {
        ApproxPercentile {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The inner t-digest, fed floats; its result rounded for integer input.
#[derive(Debug)]
struct ApproxPercentileAcc {
    inner: ApproxPercentileAccumulator,
    integer: bool,
}

impl Accumulator for ApproxPercentileAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let floats = cast(&values[0], &DataType::Float64)?;
        self.inner.update_batch(&[floats])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let v = self.inner.evaluate()?;
        if !self.integer {
            return Ok(v);
        }
        Ok(match v {
            ScalarValue::Float64(Some(x)) => ScalarValue::Int64(Some(x.round() as i64)),
            _ => ScalarValue::Int64(None),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) - std::mem::size_of_val(&self.inner) + self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() == 3 {
            return plan_err!(
                "approx_percentile with weights (x, w, p) is not supported: use approx_percentile(x, p)"
            );
        }
        arity(self.name(), args, &[2])?;
        let x = match &args[0] {
            t if t.is_integer() => DataType::Int64,
            t if t.is_numeric() => DataType::Float64,
            DataType::Null => DataType::Float64,
            other => {
                return plan_err!(
                    "approx_percentile expects a number, got {}",
                    athena_type(other)
                );
            }
        };
        if !(args[1].is_numeric() || args[1] == DataType::Null) {
            return plan_err!(
                "approx_percentile expects a percentage between 0 and 1, got {} (an array of percentages is not supported)",
                athena_type(&args[1])
            );
        }
        Ok(vec![x, DataType::Float64])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(if args[0].is_integer() {
            DataType::Int64
        } else {
            DataType::Float64
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let percentile = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .and_then(|l| match l.value() {
                ScalarValue::Float64(Some(p)) => Some(*p),
                _ => None,
            });
        let Some(p) = percentile.filter(|p| (0.0..=1.0).contains(p)) else {
            return plan_err!(
                "approx_percentile: the percentage must be a constant between 0 and 1"
            );
        };
        Ok(Box::new(ApproxPercentileAcc {
            inner: ApproxPercentileAccumulator::new(p, DataType::Float64),
            integer: args.return_type().is_integer(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let inner = approx_percentile_cont_udaf();
        let float_field: FieldRef = Arc::new(Field::new(args.name, DataType::Float64, true));
        let input_fields: Vec<FieldRef> = args
            .input_fields
            .iter()
            .map(|_| float_field.clone())
            .collect();
        inner.inner().state_fields(StateFieldsArgs {
            name: args.name,
            input_fields: &input_fields,
            return_field: float_field.clone(),
            ordering_fields: args.ordering_fields,
            is_distinct: args.is_distinct,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// from_iso8601_timestamp, from_iso8601_date

#[derive(Debug, PartialEq, Eq, Hash)]
struct FromIso8601 {
    date_only: bool,
    signature: Signature,
}

impl FromIso8601 {
    fn new(date_only: bool) -> Self {
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

// ---------------------------------------------------------------------------------------------
// year(ts), hour(ts), …

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DatePart {
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
    const ALL: [DatePart; 12] = [
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
struct DatePartFn {
    part: DatePart,
    aliases: Vec<String>,
    signature: Signature,
}

impl DatePartFn {
    fn new(part: DatePart) -> Self {
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

// ---------------------------------------------------------------------------------------------
// date_add(unit, value, ts), date_diff(unit, ts1, ts2)

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
struct DateAdd {
    signature: Signature,
}

impl DateAdd {
    fn new() -> Self {
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
struct DateDiff {
    signature: Signature,
}

impl DateDiff {
    fn new() -> Self {
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

// ---------------------------------------------------------------------------------------------
// to_unixtime(ts) → double

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToUnixtime {
    signature: Signature,
}

impl ToUnixtime {
    fn new() -> Self {
        ToUnixtime {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToUnixtime {
    fn name(&self) -> &str {
        "to_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[1])?;
        Ok(vec![coerce_timestamp(self.name(), &args[0])?])
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let ts = Timestamps::new(self.name(), &args.args[0], rows)?;
        let mut out = Float64Builder::with_capacity(rows);
        for i in 0..rows {
            out.append_option((!ts.values.is_null(i)).then(|| ts.values.value(i) as f64 / 1000.0));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

// ---------------------------------------------------------------------------------------------
// regexp_extract(s, pattern[, group])

#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    fn new() -> Self {
        RegexpExtract {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        arity(self.name(), args, &[2, 3])?;
        let mut out = vec![
            coerce_string(self.name(), &args[0])?,
            coerce_string(self.name(), &args[1])?,
        ];
        if let Some(g) = args.get(2) {
            out.push(coerce_integer(self.name(), g)?);
        }
        Ok(out)
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let input = strings(&args.args[0], rows)?;
        let patterns = strings(&args.args[1], rows)?;
        let groups = match args.args.get(2) {
            Some(g) => Some(cast(&g.to_array(rows)?, &DataType::Int64)?),
            None => None,
        };
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        let mut compiled: Option<(String, regex::Regex)> = None;
        for i in 0..rows {
            let (Some(s), Some(p)) = (string_at(&input, i), string_at(&patterns, i)) else {
                out.append_null();
                continue;
            };
            let group = match &groups {
                None => 0,
                Some(g) if g.is_null(i) => {
                    out.append_null();
                    continue;
                }
                Some(g) => g
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(i),
            };
            if compiled.as_ref().is_none_or(|(q, _)| q != p) {
                let re = regex::Regex::new(p).map_err(|e| {
                    DataFusionError::Execution(format!(
                        "regexp_extract: invalid pattern {p:?}: {}",
                        e.to_string().lines().last().unwrap_or_default()
                    ))
                })?;
                compiled = Some((p.to_string(), re));
            }
            let Some((_, re)) = &compiled else {
                out.append_null();
                continue;
            };
            let Ok(group) = usize::try_from(group) else {
                return exec_err!("regexp_extract: group must not be negative");
            };
            if group >= re.captures_len() {
                return exec_err!(
                    "regexp_extract: pattern has {} groups, asked for group {group}",
                    re.captures_len() - 1
                );
            }
            match re.captures(s).and_then(|c| c.get(group)) {
                Some(m) => out.append_value(m.as_str()),
                None => out.append_null(),
            }
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
    fn date_format_speaks_trino() {
        let x = t("2026-11-30 04:07:09.123");
        let f = |p: &str| trino_date_format(&x, p).unwrap();
        assert_eq!(f("%Y-%m-%d %H"), "2026-11-30 04");
        assert_eq!(f("%H:%i:%s"), "04:07:09");
        assert_eq!(f("%S %T"), "09 04:07:09");
        assert_eq!(f("%M %b %c %e %W %a"), "November Nov 11 30 Monday Mon");
        assert_eq!(f("%f"), "123000");
        assert_eq!(f("%h %I %k %l %p"), "04 04 4 4 AM");
        assert_eq!(f("%r"), "04:07:09 AM");
        assert_eq!(f("%j %y %v %x"), "334 26 49 2026");
        assert_eq!(f("100%% %q"), "100% q");
        let pm = t("2026-01-01 13:00:00");
        assert_eq!(trino_date_format(&pm, "%l%p %h").unwrap(), "1PM 01");
        let e = trino_date_format(&x, "%U").unwrap_err().to_string();
        assert!(e.contains("%U is not supported"), "{e}");
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
