//! Parquet lake objects: opening one (its footer, checked against the table's columns), pruning
//! its row groups with their statistics, and reading the projected columns as the table's types.
//!
//! What a Parquet object must hold to be read: columns named `deviceid` (a string),
//! `sensorreading` (an integer) and `readingtimestamp` (a timestamp of any unit, or INT96 as
//! Hive and Firehose write it), matched case-insensitively like the Glue table's columns; other
//! columns are ignored. Anything else (not Parquet, a torn footer, a codec we do not build,
//! missing columns) is a *foreign* object: skipped, counted as one malformed line, and named in
//! one line of the query's notes.
//!
//! A compacted object (see [`super::compact`]) names in its footer the objects it replaces, with
//! their row counts in row order (key [`COMPACTED_FROM`]). A scan that lists such an object
//! skips those objects; a scan that listed them before the Parquet object appeared and finds
//! one gone reads its rows from the Parquet object instead.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, StringArray, UInt64Array,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_optimizer::pruning::PruningPredicate;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use serde::{Deserialize, Serialize};

use super::{COL_DATEHOUR, COL_DEVICE, COL_READING, COL_TIMESTAMP, table_schema};

/// Footer key naming the objects a compacted object replaces.
pub const COMPACTED_FROM: &str = "iotaa.compacted_from";

/// One object (JSON, or a smaller Parquet object) folded into a compacted Parquet object: its
/// file name and how many rows it gave, in the Parquet object's row order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub object: String,
    pub rows: u64,
}

/// An opened Parquet object: its footer and where the table's columns are in it.
#[derive(Debug, Clone)]
pub(super) struct ParquetFile {
    meta: ArrowReaderMetadata,
    /// The file's root column for each of the table's first three columns.
    roots: [usize; 3],
    /// Bytes of the footer (read to open the object).
    pub(super) footer_bytes: u64,
    pub(super) replaces: Vec<Replaced>,
}

impl ParquetFile {
    /// Opens the object at `path`, or says in a few words why it is not one the table reads.
    pub(super) fn open(path: &Path) -> Result<ParquetFile, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let footer_bytes = footer_len(&mut file).map_err(|e| e.to_string())?;
        let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| format!("not a readable Parquet file ({e})"))?;
        let schema = meta.schema().clone();
        let find = |name: &str, ok: fn(&DataType) -> bool, what: &str| {
            let found = schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name));
            match found {
                Some(i) if ok(schema.field(i).data_type()) => Ok(i),
                Some(i) => Err(format!(
                    "column {name} is {}, expected {what}",
                    schema.field(i).data_type()
                )),
                None => Err(format!(
                    "no column {name} (has {}); expected deviceid, sensorreading, readingtimestamp",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        };
        let roots = [
            find(
                "deviceid",
                |t| {
                    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
                        || matches!(t, DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8))
                },
                "a string",
            )?,
            find("sensorreading", |t| t.is_integer(), "an integer")?,
            find(
                "readingtimestamp",
                |t| matches!(t, DataType::Timestamp(..)),
                "a timestamp",
            )?,
        ];
        let replaces = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == COMPACTED_FROM))
            .and_then(|k| k.value.as_deref())
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        Ok(ParquetFile {
            meta,
            roots,
            footer_bytes,
            replaces,
        })
    }

    pub(super) fn row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// The row groups a scan must read: those `predicate` cannot rule out with their statistics
    /// (all of them without a predicate, or when the statistics cannot be used).
    pub(super) fn keep_row_groups(&self, predicate: Option<&PruningPredicate>) -> Vec<usize> {
        let all: Vec<usize> = (0..self.row_groups()).collect();
        let Some(predicate) = predicate else {
            return all;
        };
        match predicate.prune(&RowGroupStats { file: self }) {
            Ok(keep) => all.into_iter().filter(|&i| keep[i]).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "row-group statistics not used");
                all
            }
        }
    }

    /// Rows in the given row groups.
    fn rows_in(&self, row_groups: &[usize]) -> u64 {
        let md = self.meta.metadata();
        row_groups
            .iter()
            .map(|&i| md.row_group(i).num_rows().max(0) as u64)
            .sum()
    }

    /// Compressed bytes of the projected table columns' chunks in the given row groups: what
    /// reading them reads from disk.
    fn chunk_bytes(&self, projection: &[usize], row_groups: &[usize]) -> u64 {
        let md = self.meta.metadata();
        let descr = md.file_metadata().schema_descr();
        let roots: Vec<usize> = self.projected_roots(projection);
        let mut bytes = 0u64;
        for &rg in row_groups {
            let rg = md.row_group(rg);
            for leaf in 0..rg.num_columns() {
                if roots.contains(&descr.get_column_root_idx(leaf)) {
                    bytes += rg.column(leaf).compressed_size().max(0) as u64;
                }
            }
        }
        bytes
    }

    fn projected_roots(&self, projection: &[usize]) -> Vec<usize> {
        projection
            .iter()
            .filter_map(|&c| self.roots.get(c).copied())
            .collect()
    }
}

/// The footer's length (metadata and the 8-byte tail), from the file's last 8 bytes.
fn footer_len(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len < 12 {
        return Ok(len);
    }
    let mut tail = [0u8; 8];
    file.seek(SeekFrom::End(-8))?;
    file.read_exact(&mut tail)?;
    let meta_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    Ok((meta_len + 8).min(len))
}

/// One object's row-group statistics as DataFusion's pruning reads them, in the table's types.
struct RowGroupStats<'a> {
    file: &'a ParquetFile,
}

impl RowGroupStats<'_> {
    fn converter(&self, column: &Column) -> Option<(StatisticsConverter<'_>, DataType)> {
        let table = table_schema();
        let c = table.index_of(&column.name).ok()?;
        let root = *self.file.roots.get(c)?;
        let schema = self.file.meta.schema();
        let name = schema.field(root).name();
        let conv = StatisticsConverter::try_new(
            name,
            schema,
            self.file.meta.metadata().file_metadata().schema_descr(),
        )
        .ok()?;
        Some((conv, table.field(c).data_type().clone()))
    }

    fn bound(&self, column: &Column, max: bool) -> Option<ArrayRef> {
        let (conv, to) = self.converter(column)?;
        let groups = self.file.meta.metadata().row_groups();
        let values = if max {
            conv.row_group_maxes(groups)
        } else {
            conv.row_group_mins(groups)
        }
        .ok()?;
        // Safe casts: a bound that does not fit the table's type becomes null (unknown), and
        // a null bound prunes nothing.
        cast_to_table(&values, &to).ok()
    }
}

impl PruningStatistics for RowGroupStats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, false)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bound(column, true)
    }

    fn num_containers(&self) -> usize {
        self.file.row_groups()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let (conv, _) = self.converter(column)?;
        let counts: UInt64Array = conv
            .row_group_null_counts(self.file.meta.metadata().row_groups())
            .ok()?;
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: UInt64Array = self
            .file
            .meta
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| Some(rg.num_rows().max(0) as u64))
            .collect();
        Some(Arc::new(counts))
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &std::collections::HashSet<ScalarValue>,
    ) -> Option<BooleanArray> {
        None
    }
}

/// A file's column as the table's type: strings as Utf8, integers as smallint (a value out of
/// range becomes NULL, as Athena's cast would fail), timestamps as milliseconds without a zone.
fn cast_to_table(values: &ArrayRef, to: &DataType) -> datafusion::arrow::error::Result<ArrayRef> {
    if values.data_type() == to {
        return Ok(values.clone());
    }
    cast_with_options(values, to, &CastOptions::default())
}

/// Why an object was not read to its end.
#[derive(Debug)]
pub(super) enum ReadFail {
    /// Removed since it was listed (compacted, or expired).
    Gone,
    /// Unreadable past some point: the bytes read until then, and why.
    Broken { bytes: u64, why: String },
}

/// Which rows of the object to read.
pub(super) enum Rows<'a> {
    /// These row groups, whole.
    Groups(&'a [usize]),
    /// `count` rows starting at row `start` of the object (a replaced JSON object's share).
    Range { start: u64, count: u64 },
}

/// What reading one object needs from its partition.
pub(super) struct ReadParts<'a> {
    pub(super) schema: &'a SchemaRef,
    pub(super) projection: &'a [usize],
    pub(super) batch_size: usize,
    pub(super) datehour: &'a str,
}

impl ParquetFile {
    /// Reads `rows` of the object at `path` as batches of the projected table columns, handing
    /// each to `emit` (false: stop). Returns the bytes read, or why the object could not be
    /// read to its end (the batches before were emitted).
    pub(super) fn read(
        &self,
        path: &Path,
        rows: Rows<'_>,
        parts: &ReadParts<'_>,
        emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<u64, ReadFail> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadFail::Gone),
            Err(e) => {
                return Err(ReadFail::Broken {
                    bytes: 0,
                    why: e.to_string(),
                });
            }
        };
        self.read_file(file, rows, parts, emit)
            .map_err(|(bytes, why)| ReadFail::Broken { bytes, why })
    }

    fn read_file(
        &self,
        file: File,
        rows: Rows<'_>,
        parts: &ReadParts<'_>,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<u64, (u64, String)> {
        let all_groups: Vec<usize>;
        let (groups, selection): (&[usize], Option<RowSelection>) = match rows {
            Rows::Groups(g) => (g, None),
            Rows::Range { start, count } => {
                all_groups = (0..self.row_groups()).collect();
                let selection = RowSelection::from(vec![
                    RowSelector::skip(start as usize),
                    RowSelector::select(count as usize),
                ]);
                (&all_groups, Some(selection))
            }
        };
        let bytes = self.chunk_bytes(parts.projection, groups);
        let file_roots = self.projected_roots(parts.projection);
        let file_columns: Vec<usize> = {
            let mut r = file_roots.clone();
            r.sort_unstable();
            r.dedup();
            r
        };
        if file_columns.is_empty() {
            // Only rows are asked for (`count(*)`, or only `datehour`): the footer has them.
            let mut left = match rows {
                Rows::Groups(g) => self.rows_in(g),
                Rows::Range { count, .. } => count,
            };
            while left > 0 {
                let n = left.min(parts.batch_size as u64) as usize;
                left -= n as u64;
                if !emit(self.table_batch(
                    &RecordBatch::new_empty(parts.schema.clone()),
                    n,
                    parts,
                )?) {
                    break;
                }
            }
            return Ok(0);
        }
        let mask = ProjectionMask::roots(self.meta.parquet_schema(), file_columns.iter().copied());
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone())
                .with_projection(mask)
                .with_row_groups(groups.to_vec())
                .with_batch_size(parts.batch_size);
        if let Some(s) = selection {
            builder = builder.with_row_selection(s);
        }
        let reader = builder.build().map_err(|e| (0, e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| (bytes, e.to_string()))?;
            let n = batch.num_rows();
            if !emit(self.table_batch(&batch, n, parts)?) {
                break;
            }
        }
        Ok(bytes)
    }

    /// A batch read from the file (its projected roots, in file order) as the table's
    /// projected columns.
    fn table_batch(
        &self,
        batch: &RecordBatch,
        rows: usize,
        parts: &ReadParts<'_>,
    ) -> Result<RecordBatch, (u64, String)> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(parts.projection.len());
        for (field, &c) in parts.schema.fields().iter().zip(parts.projection) {
            let array: ArrayRef = if c == COL_DATEHOUR {
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    parts.datehour,
                    rows,
                )))
            } else {
                debug_assert!(matches!(c, COL_DEVICE | COL_READING | COL_TIMESTAMP));
                let name = self.meta.schema().field(self.roots[c]).name();
                let values = batch
                    .column_by_name(name)
                    .ok_or_else(|| (0, format!("column {name} missing from a batch")))?;
                cast_to_table(values, field.data_type()).map_err(|e| (0, e.to_string()))?
            };
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(parts.schema.clone(), columns, &options)
            .map_err(|e| (0, e.to_string()))
    }
}
