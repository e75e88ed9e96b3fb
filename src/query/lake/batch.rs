//! [`BatchBuilder`]: decoded readings into an Arrow batch of the projected columns.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int16Builder, RecordBatch, RecordBatchOptions, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};

use super::decode::Row;
use super::{COL_DATEHOUR, COL_DEVICE, COL_READING, COL_TIMESTAMP};

/// Builders for the projected columns of one batch.
pub(super) struct BatchBuilder {
    projection: Vec<usize>,
    device: Option<StringBuilder>,
    reading: Option<Int16Builder>,
    timestamp: Option<TimestampMillisecondBuilder>,
    datehour: Option<StringBuilder>,
    rows: usize,
    capacity: usize,
}

impl BatchBuilder {
    pub(super) fn new(projection: &[usize], capacity: usize) -> Self {
        let mut b = BatchBuilder {
            projection: projection.to_vec(),
            device: None,
            reading: None,
            timestamp: None,
            datehour: None,
            rows: 0,
            capacity,
        };
        b.reset();
        b
    }

    fn reset(&mut self) {
        let has = |c| self.projection.contains(&c);
        let cap = self.capacity;
        self.device = has(COL_DEVICE).then(|| StringBuilder::with_capacity(cap, cap * 4));
        self.reading = has(COL_READING).then(|| Int16Builder::with_capacity(cap));
        self.timestamp =
            has(COL_TIMESTAMP).then(|| TimestampMillisecondBuilder::with_capacity(cap));
        self.datehour = has(COL_DATEHOUR).then(|| StringBuilder::with_capacity(cap, cap * 13));
        self.rows = 0;
    }

    pub(super) fn len(&self) -> usize {
        self.rows
    }

    pub(super) fn push(&mut self, row: &Row<'_>, datehour: &str) {
        if let Some(b) = &mut self.device {
            b.append_value(&row.device);
        }
        if let Some(b) = &mut self.reading {
            b.append_value(row.reading);
        }
        if let Some(b) = &mut self.timestamp {
            b.append_value(row.timestamp_ms);
        }
        if let Some(b) = &mut self.datehour {
            b.append_value(datehour);
        }
        self.rows += 1;
    }

    pub(super) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.projection.len());
        for &c in &self.projection {
            let array: Option<ArrayRef> = match c {
                COL_DEVICE => self
                    .device
                    .as_mut()
                    .map(|b| Arc::new(b.finish()) as ArrayRef),
                COL_READING => self
                    .reading
                    .as_mut()
                    .map(|b| Arc::new(b.finish()) as ArrayRef),
                COL_TIMESTAMP => self
                    .timestamp
                    .as_mut()
                    .map(|b| Arc::new(b.finish()) as ArrayRef),
                COL_DATEHOUR => self
                    .datehour
                    .as_mut()
                    .map(|b| Arc::new(b.finish()) as ArrayRef),
                _ => None,
            };
            let array = array.ok_or_else(|| {
                DataFusionError::Internal(format!("lake table has no column {c}"))
            })?;
            columns.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
        self.reset();
        Ok(batch)
    }
}
