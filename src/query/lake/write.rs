//! Writing readings as one Parquet object, as Firehose's record format conversion would with the
//! Glue table's schema: columns `deviceid` (string), `sensorreading` (INT32 annotated 16-bit,
//! Glue's smallint), `readingtimestamp` (INT64 timestamp in milliseconds, not adjusted to UTC),
//! Snappy pages.
//!
//! Our choices, for a tenth of the bytes to scan and for pruning: row groups of at most
//! [`ROW_GROUP_ROWS`] rows, each with min/max statistics; `deviceid` and `sensorreading`
//! dictionary-encoded (few distinct values); `readingtimestamp` delta-encoded (readings arrive in
//! near time order, so the deltas are small).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int16Array, Int16Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::decode::decode_reading;
use super::parquet::{COMPACTED_FROM, Replaced};
use super::{COL_DEVICE, COL_READING, COL_TIMESTAMP, table_schema};

/// Rows per row group: a row group is the unit that statistics can skip.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// The object's columns: the table's, without the partition column.
pub(super) fn file_schema() -> SchemaRef {
    let table = table_schema();
    let fields: Vec<Field> = [COL_DEVICE, COL_READING, COL_TIMESTAMP]
        .iter()
        .map(|&c| table.field(c).clone())
        .collect();
    Arc::new(Schema::new(fields))
}

/// Builds one Parquet object from readings, in memory.
pub struct ParquetObject {
    schema: SchemaRef,
    writer: ArrowWriter<Vec<u8>>,
    device: StringBuilder,
    reading: Int16Builder,
    timestamp: TimestampMillisecondBuilder,
    pending: usize,
    rows: u64,
    group_rows: usize,
}

impl ParquetObject {
    /// A new object.
    pub fn new() -> Result<Self, String> {
        Self::with_row_groups_of(ROW_GROUP_ROWS)
    }

    /// [`ParquetObject::new`] with row groups of at most `rows` rows (tests of pruning).
    pub fn with_row_groups_of(rows: usize) -> Result<Self, String> {
        let rows = rows.max(1);
        let schema = file_schema();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(rows))
            .set_column_dictionary_enabled(ColumnPath::from("readingtimestamp"), false)
            .set_column_encoding(
                ColumnPath::from("readingtimestamp"),
                Encoding::DELTA_BINARY_PACKED,
            )
            .set_created_by(format!("iotaa {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
            .map_err(|e| e.to_string())?;
        Ok(ParquetObject {
            schema,
            writer,
            device: StringBuilder::new(),
            reading: Int16Builder::new(),
            timestamp: TimestampMillisecondBuilder::new(),
            pending: 0,
            rows: 0,
            group_rows: rows,
        })
    }

    /// Names in the footer the objects a compaction replaces, with their rows in row order.
    pub(crate) fn set_replaces(&mut self, replaces: &[Replaced]) -> Result<(), String> {
        let list = serde_json::to_string(replaces).map_err(|e| e.to_string())?;
        self.writer
            .append_key_value_metadata(KeyValue::new(COMPACTED_FROM.to_string(), list));
        Ok(())
    }

    /// Adds one row.
    fn append(
        &mut self,
        device: Option<&str>,
        reading: Option<i16>,
        timestamp_ms: Option<i64>,
    ) -> Result<(), String> {
        self.device.append_option(device);
        self.reading.append_option(reading);
        self.timestamp.append_option(timestamp_ms);
        self.pending += 1;
        self.rows += 1;
        if self.pending >= self.group_rows {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Adds the rows of a batch of `deviceid` (Utf8), `sensorreading` (Int16) and
    /// `readingtimestamp` (Timestamp ms), as a Parquet object reads in the table's types,
    /// NULLs included (possible only in a foreign object).
    pub(crate) fn push_batch(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let col = |i: usize| batch.column(i).as_ref();
        let (Some(device), Some(reading), Some(ts)) = (
            col(0).as_any().downcast_ref::<StringArray>(),
            col(1).as_any().downcast_ref::<Int16Array>(),
            col(2).as_any().downcast_ref::<TimestampMillisecondArray>(),
        ) else {
            return Err("a batch not in the table's types".into());
        };
        for i in 0..batch.num_rows() {
            self.append(
                device.is_valid(i).then(|| device.value(i)),
                reading.is_valid(i).then(|| reading.value(i)),
                ts.is_valid(i).then(|| ts.value(i)),
            )?;
        }
        Ok(())
    }

    /// Adds a record if it is a reading (a JSON line, the records as sent); false if it is not.
    pub fn push_record(&mut self, record: &[u8]) -> Result<bool, String> {
        let text = record.trim_ascii();
        match decode_reading(text) {
            Some(row) => self
                .append(Some(&row.device), Some(row.reading), Some(row.timestamp_ms))
                .map(|_| true),
            None => Ok(false),
        }
    }

    /// Readings added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn write_pending(&mut self) -> Result<(), String> {
        if self.pending == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.device.finish()),
            Arc::new(self.reading.finish()),
            Arc::new(self.timestamp.finish()),
        ];
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| e.to_string())?;
        self.pending = 0;
        self.writer.write(&batch).map_err(|e| e.to_string())
    }

    /// The object's bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        self.write_pending()?;
        self.writer.into_inner().map_err(|e| e.to_string())
    }
}

/// A delivery buffer (`data`, each record ending at one of `ends`) as one Parquet object, and
/// the records that are not readings, as sent, each ending in a newline (delivery's
/// `ParquetEncoder`).
pub fn encode_records(data: &[u8], ends: &[usize]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut object = ParquetObject::new()?;
    let mut rejected = Vec::new();
    let mut start = 0;
    for &end in ends {
        let record = data
            .get(start..end)
            .ok_or("record bounds outside the buffer")?;
        start = end;
        if !object.push_record(record)? {
            rejected.extend_from_slice(record);
            if !record.ends_with(b"\n") {
                rejected.push(b'\n');
            }
        }
    }
    Ok((object.finish()?, rejected))
}
