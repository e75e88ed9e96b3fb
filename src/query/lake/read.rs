//! Reading one partition's objects in order: open, gunzip, split into lines, decode into
//! batches, and count bytes, objects and malformed lines.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};

use datafusion::physical_optimizer::pruning::PruningPredicate;

use super::ScanCounters;
use super::batch::BatchBuilder;
use super::decode::decode_reading;
use super::listing::{LakeObject, ObjectKind, replaced_rows};
use super::parquet::{ParquetFile, ReadFail, ReadParts, Rows};

/// A line longer than this is malformed without being buffered (Firehose's record limit is
/// 1,000 KiB).
const MAX_LINE_BYTES: usize = 1 << 20;

/// How often (in lines) a partition checks that its query is still listening.
const CANCEL_CHECK_LINES: usize = 4096;

/// What one partition needs to read its objects.
pub(super) struct PartitionScan {
    pub(super) schema: SchemaRef,
    pub(super) projection: Vec<usize>,
    pub(super) batch_size: usize,
    pub(super) limit: Option<usize>,
    pub(super) counters: Arc<ScanCounters>,
    /// The query's filters on the readings' columns, for Parquet row groups' statistics.
    pub(super) predicate: Option<Arc<PruningPredicate>>,
}

/// Counts the bytes that pass through a reader.
struct CountingReader<'a, R> {
    inner: R,
    counter: &'a AtomicU64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl PartitionScan {
    /// Reads `objects` in order; `emit` hands a batch on and returns false once nobody listens;
    /// `cancelled` says the same without a batch.
    pub(super) fn run(
        &self,
        objects: Vec<LakeObject>,
        mut emit: impl FnMut(RecordBatch) -> bool,
        cancelled: impl Fn() -> bool,
    ) -> Result<()> {
        let mut batch = BatchBuilder::new(&self.projection, self.batch_size);
        let mut rows_total = 0usize;
        let mut line = Vec::with_capacity(256);
        for object in objects {
            if cancelled() || self.limit.is_some_and(|l| rows_total >= l) {
                return Ok(());
            }
            let gzip = match &object.kind {
                ObjectKind::Json { gzip } => *gzip,
                ObjectKind::Parquet(opened) => {
                    let file = match opened.as_ref() {
                        Ok(file) => file,
                        Err(why) => {
                            self.skip(&object, why);
                            continue;
                        }
                    };
                    let groups = file.keep_row_groups(self.predicate.as_deref());
                    let rows = Rows::Groups(&groups);
                    if !self.read_parquet(file, &object, rows, &mut rows_total, &mut emit) {
                        return Ok(());
                    }
                    continue;
                }
                ObjectKind::Replaced { .. } => {
                    if !self.read_replaced(&object, &mut rows_total, &mut emit) {
                        return Ok(());
                    }
                    continue;
                }
            };
            let file = match File::open(&object.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.read_replacement(&object, None, &mut rows_total, &mut emit) {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => {
                    return Err(DataFusionError::Execution(format!(
                        "cannot read {}: {e}",
                        object.path.display()
                    )));
                }
            };
            self.counters.files.fetch_add(1, Ordering::Relaxed);
            let counting = CountingReader {
                inner: file,
                counter: &self.counters.bytes,
            };
            let mut reader: Box<dyn BufRead> = if gzip {
                Box::new(BufReader::with_capacity(
                    128 * 1024,
                    flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                        64 * 1024,
                        counting,
                    )),
                ))
            } else {
                Box::new(BufReader::with_capacity(128 * 1024, counting))
            };
            let mut lines_since_check = 0usize;
            loop {
                let too_long = match next_line(&mut reader, &mut line, MAX_LINE_BYTES) {
                    Ok(None) => break,
                    Ok(Some(too_long)) => too_long,
                    Err(e) => {
                        // A damaged object (e.g. a truncated .gz): what was read counts, the
                        // rest is one malformed line.
                        tracing::warn!(path = %object.path.display(), error = %e, "lake object unreadable past this point");
                        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
                lines_since_check += 1;
                if lines_since_check >= CANCEL_CHECK_LINES {
                    lines_since_check = 0;
                    if cancelled() {
                        return Ok(());
                    }
                }
                let text = trim_line(&line);
                if text.is_empty() && !too_long {
                    continue;
                }
                match (!too_long).then(|| decode_reading(text)).flatten() {
                    Some(r) => {
                        batch.push(&r, &object.datehour);
                        rows_total += 1;
                    }
                    None => {
                        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let at_limit = self.limit.is_some_and(|l| rows_total >= l);
                if batch.len() >= self.batch_size || at_limit {
                    if !emit(batch.finish(&self.schema)?) {
                        return Ok(());
                    }
                    if at_limit {
                        return Ok(());
                    }
                }
            }
        }
        if batch.len() > 0 {
            emit(batch.finish(&self.schema)?);
        }
        Ok(())
    }
}

impl PartitionScan {
    /// Counts an object the table cannot read as one malformed line and names it once.
    fn skip(&self, object: &LakeObject, why: &str) {
        tracing::warn!(path = %object.path.display(), %why, "lake object skipped");
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        self.counters
            .skip(format!("{}: {why}", object.path.display()));
    }

    /// Reads `rows` of a Parquet object, up to the limit. False once nobody listens or the
    /// limit is reached.
    fn read_parquet(
        &self,
        file: &ParquetFile,
        object: &LakeObject,
        rows: Rows<'_>,
        rows_total: &mut usize,
        emit: &mut impl FnMut(RecordBatch) -> bool,
    ) -> bool {
        let sub = match &rows {
            Rows::Range { start, count } => Some((*start, *count)),
            Rows::Groups(_) => None,
        };
        let parts = ReadParts {
            schema: &self.schema,
            projection: &self.projection,
            batch_size: self.batch_size,
            datehour: &object.datehour,
        };
        let mut go = true;
        let result = file.read(&object.path, rows, &parts, |batch| {
            let n = batch.num_rows();
            let room = self.limit.map_or(n, |l| l.saturating_sub(*rows_total));
            let batch = if room < n {
                batch.slice(0, room)
            } else {
                batch
            };
            *rows_total += batch.num_rows();
            go = emit(batch) && self.limit.is_none_or(|l| *rows_total < l);
            go
        });
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(ReadFail::Gone) => return self.read_replacement(object, sub, rows_total, emit),
            Err(ReadFail::Broken { bytes, why }) => {
                self.skip(object, &format!("unreadable past this point ({why})"));
                bytes
            }
        };
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(file.footer_bytes + bytes, Ordering::Relaxed);
        go
    }

    /// An object gone between listing and reading: compacted (its rows are in a Parquet
    /// object now, which this scan did not list), or removed (nothing to read). `sub`: only
    /// these rows of the gone object (itself a compacted object read for another's rows).
    /// False once nobody listens or the limit is reached.
    fn read_replacement(
        &self,
        object: &LakeObject,
        sub: Option<(u64, u64)>,
        rows_total: &mut usize,
        emit: &mut impl FnMut(RecordBatch) -> bool,
    ) -> bool {
        let (Some(dir), Some(name)) = (object.path.parent(), object.path.file_name()) else {
            return true;
        };
        match replaced_rows(dir, &name.to_string_lossy(), &object.datehour, sub) {
            Some(replaced) => self.read_replaced(&replaced, rows_total, emit),
            None => true,
        }
    }

    /// Reads an [`ObjectKind::Replaced`] object's rows.
    fn read_replaced(
        &self,
        object: &LakeObject,
        rows_total: &mut usize,
        emit: &mut impl FnMut(RecordBatch) -> bool,
    ) -> bool {
        let ObjectKind::Replaced { file, start, count } = &object.kind else {
            return true;
        };
        let rows = Rows::Range {
            start: *start,
            count: *count,
        };
        self.read_parquet(file, object, rows, rows_total, emit)
    }
}

/// Reads up to the next `\n` into `buf` (without it). `Ok(None)` at the end; `Ok(Some(true))`
/// for a line longer than `max` (skipped without buffering it).
fn next_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(available.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(too_long));
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &line[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_without_buffering() {
        let data = format!("ab\n{}\ncd", "x".repeat(100));
        let mut r = BufReader::with_capacity(8, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut r, &mut buf, 10).unwrap(), Some(false));
        assert_eq!(buf, b"ab");
        assert_eq!(next_line(&mut r, &mut buf, 10).unwrap(), Some(true));
        assert!(buf.is_empty());
        assert_eq!(next_line(&mut r, &mut buf, 10).unwrap(), Some(false));
        assert_eq!(buf, b"cd");
        assert_eq!(next_line(&mut r, &mut buf, 10).unwrap(), None);
    }
}
