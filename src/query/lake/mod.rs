//! The lake as a DataFusion table: `analyticsdemo.devicedata` over Firehose-layout objects.
//!
//! Objects sit at `<root>/<prefix>YYYY/MM/DD/HH/<stream>-1-…[.gz]`, newline-delimited JSON with
//! camelCase keys. The table has Athena's columns (lower case) plus the partition column
//! `datehour` (`YYYY/MM/DD/HH`, from the folder, as partition projection gives it on Athena):
//!
//! | column             | type                      | from                         |
//! |--------------------|---------------------------|------------------------------|
//! | `deviceid`         | varchar (Utf8)            | `deviceId`                   |
//! | `sensorreading`    | smallint (Int16)          | `sensorReading`              |
//! | `readingtimestamp` | timestamp (ms, no zone)   | `readingTimestamp`           |
//! | `datehour`         | varchar (Utf8)            | the object's hour folder     |
//!
//! This module only reads files; DataFusion does all the SQL. What it does itself:
//! - **Listing at scan time**, so every query sees the objects delivered so far. Dot-files and
//!   dot-folders (`.staging/`) and `_`-files are ignored, as Athena ignores them.
//! - **Pruning by `datehour`**: any filter that references only `datehour` (`=`, `<`, `BETWEEN`,
//!   `IN`, `LIKE`, `substr(...)`…) is accepted as an *inexact* pushdown. The scan evaluates it
//!   with DataFusion on the list of hour folders and lists objects only in the folders that
//!   pass; DataFusion still applies the filter to the rows.
//! - **Decoding**: each line is parsed with serde_json (keys matched case-insensitively, as the
//!   OpenX JSON SerDe does). A line that is not a reading (bad JSON, a missing or mistyped field,
//!   `sensorReading` outside smallint, a timestamp that is not `YYYY-MM-DD HH:MM:SS[.fff]`) is
//!   skipped and counted, like the SerDe's `ignore.malformed.json`. Every line is checked in
//!   full whatever the projection, so counts do not depend on the columns a query names.
//! - **Streaming**: files are spread over a few partitions; each partition reads its files one
//!   after the other on a blocking thread and hands batches over a channel of two. Memory stays
//!   bounded by the batch size, and dropping the query's stream stops the thread at its next
//!   batch (the channel closes).
//! - **Counting** bytes read from disk (compressed size for `.gz`), objects opened and
//!   malformed lines into the [`ScanCounters`] the query put in its session config.

mod batch;
pub mod compact;
mod decode;
mod exec;
mod listing;
pub mod parquet;
mod provider;
mod prune;
mod read;
pub mod write;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use exec::LakeScanExec;
pub use provider::LakeTable;

/// Where the year folders of a lake with Firehose key `prefix` are: (the folder that holds
/// them, the start of their names). `readings/` → (`lake/readings`, ``); `raw-` → (`lake`,
/// `raw-`).
pub fn split_prefix(lake_dir: &std::path::Path, prefix: &str) -> (std::path::PathBuf, String) {
    let (dir_part, year_prefix) = match prefix.rfind('/') {
        Some(i) => (&prefix[..i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    let root = if dir_part.is_empty() {
        lake_dir.to_path_buf()
    } else {
        lake_dir.join(dir_part)
    };
    (root, year_prefix.to_string())
}

/// Name of the partition column.
pub const DATEHOUR: &str = "datehour";

/// The table's schema: Athena's columns, lower case, then the partition column.
pub fn table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("deviceid", DataType::Utf8, true),
        Field::new("sensorreading", DataType::Int16, true),
        Field::new(
            "readingtimestamp",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new(DATEHOUR, DataType::Utf8, true),
    ]))
}

const COL_DEVICE: usize = 0;
const COL_READING: usize = 1;
const COL_TIMESTAMP: usize = 2;
const COL_DATEHOUR: usize = 3;

/// What one query's scans did, summed over every scan of the table in that query. A query puts
/// one in its session config (`SessionConfig::set_extension`); the scan adds to it.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Bytes read from disk (compressed bytes for `.gz` objects).
    pub bytes: AtomicU64,
    /// Objects opened.
    pub files: AtomicU64,
    /// Lines skipped because they are not readings (and objects the table cannot read).
    pub malformed: AtomicU64,
    /// One line per object skipped whole or in part: which, and why.
    pub skipped: std::sync::Mutex<Vec<String>>,
}

impl ScanCounters {
    /// Notes a skipped object (the first [`SKIPPED_NAMED`] are kept).
    pub(crate) fn skip(&self, line: String) {
        if let Ok(mut s) = self.skipped.lock()
            && s.len() < SKIPPED_NAMED
        {
            s.push(line);
        }
    }
}

/// How many skipped objects a query names.
pub const SKIPPED_NAMED: usize = 20;
