//! What a query returns (its columns, its rows, what it scanned and would cost on Athena) or
//! why it did not run. These types are the same for the embedded engine and for Athena, and
//! need no SQL engine in the build.

use std::time::Duration;

/// A column of a result, with Athena's name for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `varchar`, `smallint`, `timestamp`, `bigint`, `double`, …
    pub data_type: String,
}

/// The result of one query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub columns: Vec<Column>,
    /// Display strings; `None` is SQL NULL; timestamps as `YYYY-MM-DD HH:MM:SS.mmm`.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows not kept beyond `max_rows`: `None` if none were dropped or their number is unknown
    /// (see `more_rows`), `Some(n)` when counted exactly.
    pub dropped_rows: Option<u64>,
    /// True if rows were dropped.
    pub more_rows: bool,
    /// Bytes read from the lake (compressed size for `.gz`), Athena's "data scanned".
    pub bytes_scanned: u64,
    /// Objects opened.
    pub files_scanned: u64,
    /// Lines skipped because they are not readings (an object the table cannot read counts
    /// as one).
    pub malformed_lines: u64,
    /// One line per lake object skipped, whole or past some point: which, and why (the first
    /// 20).
    pub skipped_objects: Vec<String>,
    pub elapsed: Duration,
    /// Athena's QueryExecutionId when the query ran on AWS (`None` on the embedded engine,
    /// whose `files_scanned` and `malformed_lines` Athena does not report).
    pub execution_id: Option<String>,
}

/// Why a query did not run: one line, with the SQL position when the parser gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub message: String,
    /// (line, column), both from 1.
    pub position: Option<(usize, usize)>,
}

impl QueryError {
    pub fn new(message: impl Into<String>) -> Self {
        QueryError {
            message: message.into(),
            position: None,
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for QueryError {}

/// How a query of the Query pane ended.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutcome {
    Done(QueryOutput),
    Failed(String),
    /// Stopped when asked; what the engine said (Athena: the query stopped, what it scanned).
    Cancelled(String),
}

/// Athena's price: $5 per TB scanned.
pub const ATHENA_USD_PER_TB: f64 = 5.0;
/// Athena rounds each query up to the megabyte, with a 10 MB minimum.
pub const ATHENA_MINIMUM_MB: u64 = 10;

impl QueryOutput {
    /// What Athena would charge for the bytes this query scanned: $5 per TB (2^40 bytes),
    /// rounded up to the MB (2^20 bytes) with a 10 MB minimum; a query that scanned nothing
    /// costs nothing.
    pub fn cost_usd(&self) -> f64 {
        athena_cost_usd(self.bytes_scanned)
    }
}

/// What Athena charges for a query that scanned `bytes` (see [`QueryOutput::cost_usd`]); a
/// cancelled or failed query is billed the same way for what it scanned.
pub fn athena_cost_usd(bytes: u64) -> f64 {
    if bytes == 0 {
        return 0.0;
    }
    let mb = bytes.div_ceil(1 << 20).max(ATHENA_MINIMUM_MB);
    mb as f64 * ATHENA_USD_PER_TB / f64::from(1u32 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn athena_cost_rounds_up_with_a_minimum() {
        let out = |bytes| QueryOutput {
            columns: vec![],
            rows: vec![],
            dropped_rows: None,
            more_rows: false,
            bytes_scanned: bytes,
            files_scanned: 0,
            malformed_lines: 0,
            skipped_objects: Vec::new(),
            execution_id: None,
            elapsed: Duration::ZERO,
        };
        assert_eq!(out(0).cost_usd(), 0.0);
        let ten_mb = 10.0 * 5.0 / 1_048_576.0;
        assert_eq!(out(1).cost_usd(), ten_mb);
        assert_eq!(out(10 << 20).cost_usd(), ten_mb);
        assert_eq!(out((10 << 20) + 1).cost_usd(), 11.0 * 5.0 / 1_048_576.0);
        assert_eq!(out(1 << 40).cost_usd(), 5.0);
    }
}
