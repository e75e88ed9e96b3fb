//! Athena's names for types, and the argument types the functions accept (checked when
//! planning, with a message naming the function).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, plan_err};

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
pub(super) fn coerce_timestamp(function: &str, t: &DataType) -> Result<DataType> {
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

pub(super) fn coerce_string(function: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8)
        }
        DataType::Dictionary(_, v) => coerce_string(function, v),
        other => plan_err!("{function} expects varchar, got {}", athena_type(other)),
    }
}

pub(super) fn coerce_integer(function: &str, t: &DataType) -> Result<DataType> {
    if t.is_integer() || *t == DataType::Null {
        Ok(DataType::Int64)
    } else {
        plan_err!("{function} expects an integer, got {}", athena_type(t))
    }
}

pub(super) fn arity(function: &str, args: &[DataType], allowed: &[usize]) -> Result<()> {
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
