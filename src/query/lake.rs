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

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int16Builder, RecordBatch, RecordBatchOptions, StringArray,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Name of the partition column.
pub const DATEHOUR: &str = "datehour";

/// A line longer than this is malformed without being buffered (Firehose's record limit is
/// 1,000 KiB).
const MAX_LINE_BYTES: usize = 1 << 20;

/// How often (in lines) a partition checks that its query is still listening.
const CANCEL_CHECK_LINES: usize = 4096;

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
    /// Lines skipped because they are not readings.
    pub malformed: AtomicU64,
}

/// The lake folder as a table.
#[derive(Debug)]
pub struct LakeTable {
    /// Partitions reading right now (over all queries): lets callers see that a cancelled
    /// query's scan threads have stopped.
    active: Arc<AtomicUsize>,
    root: PathBuf,
    /// Start of each year folder's name (the part of the Firehose prefix after its last `/`).
    year_prefix: String,
    schema: SchemaRef,
}

impl LakeTable {
    /// `root` holds the `YYYY` folders (after any `dir/` part of the prefix); `year_prefix` is
    /// the rest of the prefix (usually empty).
    pub fn new(root: PathBuf, year_prefix: String, active: Arc<AtomicUsize>) -> Self {
        LakeTable {
            active,
            root,
            year_prefix,
            schema: table_schema(),
        }
    }
}

/// One object to read.
#[derive(Debug, Clone)]
struct LakeObject {
    path: PathBuf,
    datehour: Arc<str>,
    gzip: bool,
    size: u64,
}

/// True if `expr` can prune hour folders: it reads `datehour` and no other column, and its value
/// does not change from one evaluation to the next.
fn prunes_datehour(expr: &Expr) -> bool {
    let refs = expr.column_refs();
    if refs.is_empty() || refs.iter().any(|c| c.name != DATEHOUR) || expr.is_volatile() {
        return false;
    }
    let mut plain = true;
    let _ = expr.apply(|e| {
        if matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::InSubquery(_)
                | Expr::Exists(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::Placeholder(_)
        ) {
            plain = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    plain
}

/// Which hour folders pass every `datehour` filter. A filter that cannot be evaluated prunes
/// nothing (the filter is inexact: DataFusion applies it to the rows anyway).
fn prune(state: &dyn Session, filters: &[Expr], datehours: &[String]) -> Vec<bool> {
    let mut keep = vec![true; datehours.len()];
    if datehours.is_empty() {
        return keep;
    }
    let schema = Arc::new(Schema::new(vec![Field::new(
        DATEHOUR,
        DataType::Utf8,
        true,
    )]));
    let Ok(df_schema) = DFSchema::try_from(schema.as_ref().clone()) else {
        return keep;
    };
    let values: ArrayRef = Arc::new(StringArray::from_iter_values(datehours.iter()));
    let Ok(batch) = RecordBatch::try_new(schema, vec![values]) else {
        return keep;
    };
    for filter in filters.iter().filter(|f| prunes_datehour(f)) {
        let unqualified = filter.clone().transform(|e| {
            Ok(match e {
                Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
                other => Transformed::no(other),
            })
        });
        let Ok(unqualified) = unqualified else {
            continue;
        };
        let evaluated = state
            .create_physical_expr(unqualified.data, &df_schema)
            .and_then(|p| p.evaluate(&batch))
            .and_then(|v| v.into_array(datehours.len()));
        let Ok(array) = evaluated else {
            tracing::debug!(%filter, "datehour filter not evaluated for pruning");
            continue;
        };
        let Some(passed) = array.as_any().downcast_ref::<BooleanArray>() else {
            continue;
        };
        for (i, k) in keep.iter_mut().enumerate() {
            // NULL (unknown) means no row of that folder can pass either.
            *k = *k && passed.is_valid(i) && passed.value(i);
        }
    }
    keep
}

fn digits(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| b.is_ascii_digit())
}

fn sorted_dir(dir: &Path) -> Vec<(String, PathBuf, std::fs::FileType, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') || name.starts_with('_') {
                return None;
            }
            // Follow symlinks: a lake may link folders in.
            let meta = std::fs::metadata(e.path()).ok()?;
            Some((name, e.path(), meta.file_type(), meta.len()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every `YYYY/MM/DD/HH` folder under the root, as (`datehour`, path), in time order.
fn list_hour_folders(root: &Path, year_prefix: &str) -> Vec<(String, PathBuf)> {
    let mut hours = Vec::new();
    for (name, year_dir, ty, _) in sorted_dir(root) {
        let Some(year) = name.strip_prefix(year_prefix) else {
            continue;
        };
        if !ty.is_dir() || !digits(year, 4) {
            continue;
        }
        for (month, month_dir, ty, _) in sorted_dir(&year_dir) {
            if !ty.is_dir() || !digits(&month, 2) {
                continue;
            }
            for (day, day_dir, ty, _) in sorted_dir(&month_dir) {
                if !ty.is_dir() || !digits(&day, 2) {
                    continue;
                }
                for (hour, hour_dir, ty, _) in sorted_dir(&day_dir) {
                    if ty.is_dir() && digits(&hour, 2) {
                        hours.push((format!("{year}/{month}/{day}/{hour}"), hour_dir));
                    }
                }
            }
        }
    }
    hours
}

/// The objects in the given hour folders.
fn list_objects(folders: Vec<(String, PathBuf)>) -> Vec<LakeObject> {
    let mut objects = Vec::new();
    for (datehour, dir) in folders {
        let datehour: Arc<str> = datehour.into();
        for (name, path, ty, size) in sorted_dir(&dir) {
            if !ty.is_file() {
                continue;
            }
            objects.push(LakeObject {
                gzip: name.ends_with(".gz"),
                path,
                datehour: datehour.clone(),
                size,
            });
        }
    }
    objects
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if prunes_datehour(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let counters = state
            .config()
            .get_extension::<ScanCounters>()
            .unwrap_or_default();
        let root = self.root.clone();
        let year_prefix = self.year_prefix.clone();
        let folders = tokio::task::spawn_blocking(move || list_hour_folders(&root, &year_prefix))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let names: Vec<String> = folders.iter().map(|(d, _)| d.clone()).collect();
        let keep = prune(state, filters, &names);
        let total_folders = folders.len();
        let kept: Vec<(String, PathBuf)> = folders
            .into_iter()
            .zip(keep)
            .filter_map(|(f, k)| k.then_some(f))
            .collect();
        let kept_folders = kept.len();
        let objects = tokio::task::spawn_blocking(move || list_objects(kept))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&projection)?);
        let partitions = state.config().target_partitions().clamp(1, 64);
        Ok(Arc::new(LakeScanExec::new(
            objects,
            partitions,
            ScanParts {
                schema,
                projection,
                limit,
                counters,
                active: self.active.clone(),
                folders: (kept_folders, total_folders),
            },
        )))
    }
}

/// The physical scan: one partition per group of objects.
#[derive(Debug)]
pub struct LakeScanExec {
    schema: SchemaRef,
    projection: Vec<usize>,
    partitions: Vec<Vec<LakeObject>>,
    limit: Option<usize>,
    counters: Arc<ScanCounters>,
    active: Arc<AtomicUsize>,
    folders: (usize, usize),
    files: usize,
    listed_bytes: u64,
    properties: Arc<PlanProperties>,
}

/// What a scan is about, besides its objects.
struct ScanParts {
    schema: SchemaRef,
    projection: Vec<usize>,
    limit: Option<usize>,
    counters: Arc<ScanCounters>,
    active: Arc<AtomicUsize>,
    /// (hour folders kept, hour folders listed)
    folders: (usize, usize),
}

impl LakeScanExec {
    fn new(objects: Vec<LakeObject>, max_partitions: usize, parts: ScanParts) -> Self {
        let ScanParts {
            schema,
            projection,
            limit,
            counters,
            active,
            folders,
        } = parts;
        let n = max_partitions.min(objects.len()).max(1);
        let files = objects.len();
        let listed_bytes = objects.iter().map(|o| o.size).sum();
        // Round-robin in time order: each partition reads its share oldest first.
        let mut partitions = vec![Vec::new(); n];
        for (i, o) in objects.into_iter().enumerate() {
            partitions[i % n].push(o);
        }
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        LakeScanExec {
            schema,
            projection,
            partitions,
            limit,
            counters,
            active,
            folders,
            files,
            listed_bytes,
            properties,
        }
    }
}

impl DisplayAs for LakeScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "LakeScanExec: hour folders {}/{}, objects {}, bytes {}, columns [{}]{}",
                self.folders.0,
                self.folders.1,
                self.files,
                self.listed_bytes,
                columns.join(", "),
                self.limit
                    .map(|l| format!(", limit {l}"))
                    .unwrap_or_default()
            ),
            DisplayFormatType::TreeRender => write!(
                f,
                "folders={}/{}\nobjects={}\nbytes={}",
                self.folders.0, self.folders.1, self.files, self.listed_bytes
            ),
        }
    }
}

impl ExecutionPlan for LakeScanExec {
    fn name(&self) -> &str {
        "LakeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(objects) = self.partitions.get(partition).cloned() else {
            return Err(DataFusionError::Internal(format!(
                "LakeScanExec has {} partitions, asked for {partition}",
                self.partitions.len()
            )));
        };
        let scan = PartitionScan {
            schema: self.schema.clone(),
            projection: self.projection.clone(),
            batch_size: context.session_config().batch_size().max(1),
            limit: self.limit,
            counters: self.counters.clone(),
        };
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.schema.clone(), 2);
        let tx = builder.tx();
        let active = self.active.clone();
        builder.spawn_blocking(move || {
            let _running = Running::new(active);
            scan.run(
                objects,
                |batch| tx.blocking_send(Ok(batch)).is_ok(),
                || tx.is_closed(),
            )
        });
        Ok(builder.build())
    }
}

/// Counts a running partition for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(active: Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::SeqCst);
        Running(active)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What one partition needs to read its objects.
struct PartitionScan {
    schema: SchemaRef,
    projection: Vec<usize>,
    batch_size: usize,
    limit: Option<usize>,
    counters: Arc<ScanCounters>,
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
    fn run(
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
            let file = match File::open(&object.path) {
                Ok(f) => f,
                // Gone between listing and reading: nothing to read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
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
            let mut reader: Box<dyn BufRead> = if object.gzip {
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

/// A decoded reading.
#[derive(Debug, PartialEq)]
pub(crate) struct Row<'a> {
    pub device: Cow<'a, str>,
    pub reading: i16,
    pub timestamp_ms: i64,
}

/// Decodes one line, or `None` if it is not a reading.
pub(crate) fn decode_reading(line: &[u8]) -> Option<Row<'_>> {
    let raw: RawReading<'_> = serde_json::from_slice(line).ok()?;
    let reading = i16::try_from(raw.reading?).ok()?;
    let timestamp_ms = parse_timestamp_ms(raw.timestamp?.as_ref())?;
    Some(Row {
        device: raw.device?,
        reading,
        timestamp_ms,
    })
}

/// `YYYY-MM-DD HH:MM:SS[.f…]` (Athena's TIMESTAMP text) as milliseconds since the epoch;
/// digits past the millisecond are truncated.
pub(crate) fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = num(0..4)? as i32;
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut millis = 0u32;
    if b.len() > 19 {
        let frac = &b[20..];
        if b[19] != b'.' || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        if !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
        }
    }
    let t = NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_milli_opt(hour, minute, second, millis)?;
    Some(t.and_utc().timestamp_millis())
}

/// The fields of a line, keys matched case-insensitively; others ignored.
#[derive(Default)]
struct RawReading<'a> {
    device: Option<Cow<'a, str>>,
    reading: Option<i64>,
    timestamp: Option<Cow<'a, str>>,
}

enum Key {
    Device,
    Reading,
    Timestamp,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Key, E> {
                Ok(if v.eq_ignore_ascii_case("deviceid") {
                    Key::Device
                } else if v.eq_ignore_ascii_case("sensorreading") {
                    Key::Reading
                } else if v.eq_ignore_ascii_case("readingtimestamp") {
                    Key::Timestamp
                } else {
                    Key::Other
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A JSON string, borrowed from the line when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

/// A JSON integer (a float, string or null is not one).
struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Integer, E> {
                Ok(Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Integer, E> {
                i64::try_from(v)
                    .map(Integer)
                    .map_err(|_| E::custom("integer out of range"))
            }
        }
        d.deserialize_i64(IntVisitor)
    }
}

impl<'de> Deserialize<'de> for RawReading<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct LineVisitor;
        impl<'de> Visitor<'de> for LineVisitor {
            type Value = RawReading<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut raw = RawReading::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Device => raw.device = Some(map.next_value::<Text<'de>>()?.0),
                        Key::Reading => raw.reading = Some(map.next_value::<Integer>()?.0),
                        Key::Timestamp => {
                            raw.timestamp = Some(map.next_value::<Text<'de>>()?.0);
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(LineVisitor)
    }
}

/// Builders for the projected columns of one batch.
struct BatchBuilder {
    projection: Vec<usize>,
    device: Option<StringBuilder>,
    reading: Option<Int16Builder>,
    timestamp: Option<TimestampMillisecondBuilder>,
    datehour: Option<StringBuilder>,
    rows: usize,
    capacity: usize,
}

impl BatchBuilder {
    fn new(projection: &[usize], capacity: usize) -> Self {
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

    fn len(&self) -> usize {
        self.rows
    }

    fn push(&mut self, row: &Row<'_>, datehour: &str) {
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

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_readings_and_rejects_the_rest() {
        let ok = decode_reading(
            br#"{"deviceId":"aaaa","sensorReading":-3,"readingTimestamp":"2026-11-30 05:00:01.123","ANOMALY_SCORE":0.7}"#,
        )
        .unwrap();
        assert_eq!(ok.device, "aaaa");
        assert_eq!(ok.reading, -3);
        assert_eq!(ok.timestamp_ms, 1_796_014_801_123);
        // Keys in any case, as the OpenX SerDe reads them; escapes are fine.
        let ok = decode_reading(
            br#"{"DEVICEID":"a\"b","sensorreading":7,"ReadingTimestamp":"2026-11-30 05:00:01"}"#,
        )
        .unwrap();
        assert_eq!(ok.device, "a\"b");
        assert_eq!(ok.reading, 7);
        for bad in [
            &b"{not json"[..],
            br#"{"deviceId":"a","readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":"3","readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":3.5,"readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":40000,"readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":3,"readingTimestamp":"2026-11-30T05:00:01"}"#,
            br#"{"deviceId":"a","sensorReading":3,"readingTimestamp":"2026-13-30 05:00:01"}"#,
            br#"{"deviceId":null,"sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01"}"#,
            br#"[1,2,3]"#,
            br#"{"deviceId":"a","sensorReading":3,"readingTimestamp":"2026-11-30 05:00:01"} x"#,
        ] {
            assert!(
                decode_reading(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn timestamps_parse_to_the_millisecond() {
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01.123456"), Some(1123));
        assert_eq!(parse_timestamp_ms("1970-01-01 00:00:01."), None);
        assert_eq!(parse_timestamp_ms("1970-01-01 24:00:00"), None);
        assert_eq!(parse_timestamp_ms("1970-02-30 00:00:00"), None);
    }

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
