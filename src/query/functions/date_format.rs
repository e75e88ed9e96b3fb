//! `date_format(timestamp, format)` with Trino's MySQL-style specifiers.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{Timestamps, string_at, strings};
use super::types::{arity, coerce_string, coerce_timestamp};

/// Trino's `date_format(timestamp, format)` with MySQL-style specifiers.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct DateFormat {
    signature: Signature,
}

impl DateFormat {
    pub(super) fn new() -> Self {
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
}
