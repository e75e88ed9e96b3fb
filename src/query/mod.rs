//! SQL over the lake: the local "Athena".
//!
//! An embedded DataFusion session with one table, `<database>.<table>` (`analyticsdemo.devicedata`
//! by default; also reachable as `awsdatacatalog.<database>.<table>` and as plain `<table>`),
//! with Athena's columns and the `datehour` partition column (see [`lake`]). DataFusion does all
//! the SQL; [`lake`] only lists and reads objects, and [`functions`] adds the Trino functions
//! DataFusion lacks.
//!
//! - **Read-only**: one statement per query; only `SELECT`/`WITH`/`VALUES`, `EXPLAIN` and
//!   `DESCRIBE` are accepted, and DataFusion's `SQLOptions` refuse DDL, DML and statements in
//!   whatever is planned. No other table is registered, URL tables are off, and
//!   `information_schema` is not there: SQL cannot reach a path of its own choosing.
//! - **Bounded**: results keep at most `max_rows` rows. Once the cap is passed, the rows that
//!   follow are counted (not kept) for at most 100 ms: a result that is already computed (sorted,
//!   aggregated) is counted exactly ([`QueryOutput::dropped_rows`] is `Some`); if the rest
//!   would need more scanning the query stops there and only [`QueryOutput::more_rows`] is set
//!   ("more rows were dropped"). Memory is bounded by a pool (`memory_limit_bytes`;
//!   sorts and aggregations spill to temp files first, then fail with a clear line).
//! - **Cancellable**: [`QueryEngine::run`] is a future; dropping it (or aborting its task)
//!   aborts the query's task on the engine's runtime, which drops the DataFusion stream; the
//!   scan threads stop at their next batch ([`QueryEngine::active_scans`] shows it).
//! - **Isolated**: queries run on the engine's own tokio runtime (one worker per core, big
//!   stacks), so `run` can be awaited from any executor, heavy queries do not starve the
//!   caller's tasks, a deep expression cannot overflow the caller's stack, and a panic inside
//!   DataFusion comes back as an error.

mod cli;
mod format;
pub mod functions;
pub mod lake;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, TableReference};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Ident, SelectItem, SetExpr, Statement as SqlStatement,
};
use datafusion::sql::sqlparser::parser::ParserError;
use futures::StreamExt;

pub use cli::command;
pub use format::{format_csv, format_json, format_summary, format_table};

use crate::config::Loaded;
use lake::{LakeTable, ScanCounters};

/// Default memory pool for one engine (all its queries together).
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 512 * 1024 * 1024;

/// Stack of the engine's threads. Planning and evaluating a deeply nested expression recurses
/// (in a debug build, over 10 KiB per level); this is address space, touched only as used.
const QUERY_STACK_BYTES: usize = 256 << 20;

/// Longest SQL accepted, in tokens: far more than any hand-written query, little enough that
/// the deepest expression it can spell fits [`QUERY_STACK_BYTES`].
const MAX_SQL_TOKENS: usize = 10_000;

/// Athena's catalog name, so `awsdatacatalog.analyticsdemo.devicedata` works too.
pub const CATALOG: &str = "awsdatacatalog";

/// How long to keep counting the rows that follow once `max_rows` is reached: enough for a
/// result that is already computed (sorted, aggregated), too little to finish a long scan.
const DRAIN_BUDGET: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    pub database: String,
    pub table: String,
    pub max_rows: usize,
    pub memory_limit_bytes: usize,
}

impl EngineOptions {
    /// From `[query]` of the config, with the default memory limit.
    pub fn from_config(loaded: &Loaded) -> Self {
        let q = &loaded.config.query;
        EngineOptions {
            database: q.database.clone(),
            table: q.table.clone(),
            max_rows: q.max_rows as usize,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
        }
    }
}

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
    /// Lines skipped because they are not readings.
    pub malformed_lines: u64,
    pub elapsed: Duration,
    /// Athena's QueryExecutionId when the query ran on AWS (`None` on the embedded engine,
    /// whose `files_scanned` and `malformed_lines` Athena does not report).
    pub execution_id: Option<String>,
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
        if self.bytes_scanned == 0 {
            return 0.0;
        }
        let mb = self.bytes_scanned.div_ceil(1 << 20).max(ATHENA_MINIMUM_MB);
        mb as f64 * ATHENA_USD_PER_TB / f64::from(1u32 << 20)
    }
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

/// The embedded engine: cheap to clone, `Send + Sync`; queries may run concurrently.
#[derive(Clone)]
pub struct QueryEngine {
    inner: Arc<Inner>,
}

struct Inner {
    /// Runs the queries; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    ctx: SessionContext,
    active_scans: Arc<AtomicUsize>,
    options: EngineOptions,
    lake_dir: PathBuf,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("lake_dir", &self.inner.lake_dir)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl QueryEngine {
    /// An engine over `lake_dir`, the folder that holds the `YYYY/MM/DD/HH/` folders.
    pub fn new(lake_dir: &Path, options: EngineOptions) -> Result<QueryEngine, QueryError> {
        Self::with_key_prefix(lake_dir, "", options)
    }

    /// An engine over the lake of this config: `<data_dir>/lake/` plus `delivery.prefix`.
    pub fn for_config(loaded: &Loaded) -> Result<QueryEngine, QueryError> {
        let lake = loaded.data_dir.join("lake");
        Self::with_key_prefix(
            &lake,
            &loaded.config.delivery.prefix,
            EngineOptions::from_config(loaded),
        )
    }

    /// An engine over `lake_dir` whose objects sit under the Firehose key `prefix`
    /// (`readings/` → `lake_dir/readings/YYYY/…`; `raw-` → `lake_dir/raw-YYYY/…`).
    pub fn with_key_prefix(
        lake_dir: &Path,
        prefix: &str,
        options: EngineOptions,
    ) -> Result<QueryEngine, QueryError> {
        let (dir_part, year_prefix) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let root = if dir_part.is_empty() {
            lake_dir.to_path_buf()
        } else {
            lake_dir.join(dir_part)
        };
        let database = options.database.to_lowercase();
        let table = options.table.to_lowercase();
        if database.is_empty() || table.is_empty() {
            return Err(QueryError::new(
                "query.database and query.table must not be empty",
            ));
        }
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, &database)
            .with_create_default_catalog_and_schema(true)
            .with_information_schema(false)
            .with_target_partitions(workers);
        {
            let o = config.options_mut();
            // Positions for planning errors (unknown column, …), not only syntax errors.
            o.sql_parser.collect_spans = true;
        }
        let memory = RuntimeEnvBuilder::new()
            .with_memory_limit(options.memory_limit_bytes.max(1 << 20), 1.0)
            .build_arc()
            .map_err(|e| describe_error(&e, &options))?;
        let ctx = SessionContext::new_with_config_rt(config, memory);
        functions::register(&ctx);
        let active_scans = Arc::new(AtomicUsize::new(0));
        ctx.register_table(
            TableReference::partial(database.as_str(), table.as_str()),
            Arc::new(LakeTable::new(
                root.clone(),
                year_prefix.to_string(),
                active_scans.clone(),
            )),
        )
        .map_err(|e| describe_error(&e, &options))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("iotaa-query")
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| QueryError::new(format!("cannot start the query runtime: {e}")))?;
        Ok(QueryEngine {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                ctx,
                active_scans,
                options: EngineOptions {
                    database,
                    table,
                    ..options
                },
                lake_dir: root,
            }),
        })
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// `database.table`, as queries name it.
    pub fn table_name(&self) -> String {
        format!(
            "{}.{}",
            self.inner.options.database, self.inner.options.table
        )
    }

    /// Scan partitions reading the lake right now, over all queries. After a query's future is
    /// dropped this falls back to 0 within a batch's time.
    pub fn active_scans(&self) -> usize {
        self.inner
            .active_scans
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The folder scanned (holding `YYYY/…`, or the prefix's folder).
    pub fn lake_dir(&self) -> &Path {
        &self.inner.lake_dir
    }

    /// Runs one read-only statement, keeping at most `max_rows` rows.
    pub async fn run(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        self.run_with_max_rows(sql, self.inner.options.max_rows)
            .await
    }

    /// [`run`](Self::run) with another row cap.
    pub async fn run_with_max_rows(
        &self,
        sql: &str,
        max_rows: usize,
    ) -> Result<QueryOutput, QueryError> {
        let Some(runtime) = &self.inner.runtime else {
            return Err(QueryError::new("the query engine has shut down"));
        };
        // The query runs on the engine's own runtime (big stacks, its own workers): a deep
        // expression cannot overflow the caller's stack, heavy work does not starve the
        // caller's tasks, and dropping this future aborts the task, which drops the stream.
        let task = runtime.spawn(execute(
            self.inner.ctx.clone(),
            self.inner.options.clone(),
            sql.to_string(),
            max_rows,
        ));
        let mut task = AbortOnDrop(task);
        match (&mut task.0).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "the query engine panicked");
                Err(QueryError::new(format!(
                    "internal error in the query engine (a bug): {}",
                    one_line(&what)
                )))
            }
            Err(_) => Err(QueryError::new("the query was cancelled")),
        }
    }
}

/// Aborts the task when the future awaiting it is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Allowed anywhere, also inside an async context (dropping a Runtime is not).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Parses, checks, plans and runs one statement (on the engine's runtime).
async fn execute(
    ctx: SessionContext,
    options: EngineOptions,
    sql: String,
    max_rows: usize,
) -> Result<QueryOutput, QueryError> {
    let started = Instant::now();
    let err = |e: DataFusionError| describe_error(&e, &options);
    if sql.trim().trim_matches(';').trim().is_empty() {
        return Err(QueryError::new("empty query: nothing to run"));
    }
    check_size(&sql)?;
    let counters = Arc::new(ScanCounters::default());
    let mut state = ctx.state();
    state.config_mut().set_extension(counters.clone());
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state
        .sql_to_statement(&sql, &dialect)
        .map_err(|e| at_end_if_eof(err(e), &sql))?;
    check_read_only(&statement)?;
    let mut statement = statement;
    name_columns_like_athena(&mut statement);
    let plan = state.statement_to_plan(statement).await.map_err(err)?;
    if let LogicalPlan::DescribeTable(d) = &plan {
        return Ok(describe_output(&d.schema, started.elapsed()));
    }
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(err)?;
    let physical = state.create_physical_plan(&plan).await.map_err(err)?;
    let schema = physical.schema();
    let columns: Vec<Column> = schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: functions::athena_type(f.data_type()),
        })
        .collect();
    let mut stream = execute_stream(physical, state.task_ctx()).map_err(err)?;
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut dropped = 0u64;
    let mut exact = true;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(err)?;
        let keep = max_rows.saturating_sub(rows.len()).min(batch.num_rows());
        append_rows(&mut rows, &batch, keep).map_err(err)?;
        dropped += (batch.num_rows() - keep) as u64;
        if dropped > 0 {
            exact = drain_for_a_moment(&mut stream, &mut dropped).await;
            break;
        }
    }
    drop(stream);
    let elapsed = started.elapsed();
    use std::sync::atomic::Ordering::Relaxed;
    Ok(QueryOutput {
        columns,
        rows,
        dropped_rows: (dropped > 0 && exact).then_some(dropped),
        more_rows: dropped > 0,
        bytes_scanned: counters.bytes.load(Relaxed),
        files_scanned: counters.files.load(Relaxed),
        malformed_lines: counters.malformed.load(Relaxed),
        execution_id: None,
        elapsed,
    })
}

/// Refuses SQL so long that planning it could exhaust even the engine's big stacks.
fn check_size(sql: &str) -> Result<(), QueryError> {
    let tokens = datafusion::sql::sqlparser::tokenizer::Tokenizer::new(
        &datafusion::sql::sqlparser::dialect::GenericDialect {},
        sql,
    )
    .tokenize()
    .map(|t| {
        t.iter()
            .filter(|t| {
                !matches!(
                    t,
                    datafusion::sql::sqlparser::tokenizer::Token::Whitespace(_)
                )
            })
            .count()
    })
    .unwrap_or(0);
    if tokens > MAX_SQL_TOKENS {
        return Err(QueryError::new(format!(
            "the query is too long ({tokens} tokens; at most {MAX_SQL_TOKENS})"
        )));
    }
    Ok(())
}

/// Counts the rows that follow for at most [`DRAIN_BUDGET`]; true if that reached the end.
/// (Needs the tokio timer, as any runtime built with `enable_all` has.)
async fn drain_for_a_moment(
    stream: &mut datafusion::execution::SendableRecordBatchStream,
    n: &mut u64,
) -> bool {
    let deadline = Instant::now() + DRAIN_BUDGET;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(batch))) => *n += batch.num_rows() as u64,
            Ok(None) => return true,
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

const TIMESTAMP_DISPLAY: &str = "%Y-%m-%d %H:%M:%S%.3f";

fn append_rows(
    rows: &mut Vec<Vec<Option<String>>>,
    batch: &RecordBatch,
    count: usize,
) -> Result<(), DataFusionError> {
    if count == 0 {
        return Ok(());
    }
    let options = FormatOptions::new()
        .with_display_error(true)
        .with_timestamp_format(Some(TIMESTAMP_DISPLAY))
        .with_timestamp_tz_format(Some(TIMESTAMP_DISPLAY))
        .with_datetime_format(Some(TIMESTAMP_DISPLAY))
        .with_date_format(Some("%Y-%m-%d"));
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    for i in 0..count {
        rows.push(
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| (!c.is_null(i)).then(|| f.value(i).to_string()))
                .collect(),
        );
    }
    Ok(())
}

/// Athena names an output column after the column it selects, and `_colN` (N = its position)
/// for any other expression without an alias. Doing the same here keeps result headers as on
/// Athena and lets `SELECT count(*), count(*)` or two casts of one column run (DataFusion
/// refuses two unnamed columns with the same expression text).
fn name_columns_like_athena(statement: &mut DfStatement) {
    fn in_set_expr(body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                for (i, item) in select.projection.iter_mut().enumerate() {
                    if let SelectItem::UnnamedExpr(expr) = item
                        && !matches!(
                            expr,
                            SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_)
                        )
                    {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: Ident::new(format!("_col{i}")),
                        };
                    }
                }
            }
            SetExpr::Query(q) => in_set_expr(&mut q.body),
            // The first branch of a UNION names the columns.
            SetExpr::SetOperation { left, .. } => in_set_expr(left),
            _ => {}
        }
    }
    if let DfStatement::Statement(s) = statement
        && let SqlStatement::Query(q) = s.as_mut()
    {
        in_set_expr(&mut q.body);
    }
}

/// `DESCRIBE table` with Athena's type names, partition column marked.
fn describe_output(schema: &Schema, elapsed: Duration) -> QueryOutput {
    let text = |s: &str| Some(s.to_string());
    QueryOutput {
        columns: ["column_name", "data_type", "extra"]
            .iter()
            .map(|n| Column {
                name: n.to_string(),
                data_type: "varchar".into(),
            })
            .collect(),
        rows: schema
            .fields()
            .iter()
            .map(|f| {
                vec![
                    text(f.name()),
                    Some(functions::athena_type(f.data_type())),
                    (f.name() == lake::DATEHOUR).then(|| "partition key".to_string()),
                ]
            })
            .collect(),
        dropped_rows: None,
        more_rows: false,
        bytes_scanned: 0,
        files_scanned: 0,
        malformed_lines: 0,
        execution_id: None,
        elapsed,
    }
}

/// Refuses everything but queries, before planning, with the statement's name.
fn check_read_only(statement: &DfStatement) -> Result<(), QueryError> {
    match statement {
        DfStatement::Statement(s) => check_sql_statement(s),
        DfStatement::Explain(e) => check_read_only(&e.statement),
        DfStatement::CreateExternalTable(_) => Err(read_only("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => Err(read_only("COPY")),
        DfStatement::Reset(_) => Err(read_only("RESET")),
    }
}

fn check_sql_statement(s: &SqlStatement) -> Result<(), QueryError> {
    match s {
        SqlStatement::Query(q) if matches!(q.body.as_ref(), SetExpr::Select(s) if s.into.is_some()) => {
            Err(read_only("SELECT INTO"))
        }
        SqlStatement::Query(q) => match q.body.as_ref() {
            SetExpr::Insert(inner)
            | SetExpr::Update(inner)
            | SetExpr::Delete(inner)
            | SetExpr::Merge(inner) => Err(read_only(&statement_name(&inner.to_string()))),
            _ => Ok(()),
        },
        SqlStatement::ExplainTable { .. } => Ok(()),
        SqlStatement::Explain { statement, .. } => check_sql_statement(statement),
        other => Err(read_only(&statement_name(&other.to_string()))),
    }
}

/// The leading keywords of a statement: `CREATE TABLE`, `INSERT INTO`, `DROP VIEW`, `SET`…
fn statement_name(text: &str) -> String {
    const OBJECTS: [&str; 12] = [
        "TABLE",
        "VIEW",
        "SCHEMA",
        "DATABASE",
        "INDEX",
        "FUNCTION",
        "INTO",
        "FROM",
        "CATALOG",
        "TABLES",
        "COLUMNS",
        "TRANSACTION",
    ];
    let mut words = Vec::new();
    for w in text.split_whitespace().take(4) {
        if !w.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            break;
        }
        words.push(w);
        if OBJECTS.contains(&w) {
            break;
        }
    }
    if words.is_empty() {
        "this statement".into()
    } else {
        words.join(" ")
    }
}

fn read_only(what: &str) -> QueryError {
    QueryError::new(format!(
        "iotaa is read-only: {what} is not allowed (only SELECT, WITH, VALUES, EXPLAIN and DESCRIBE run here)"
    ))
}

/// sqlparser gives no position when the SQL ends too early: point just past its end.
fn at_end_if_eof(mut e: QueryError, sql: &str) -> QueryError {
    if e.position.is_none() && e.message.contains("found: EOF") {
        let text = sql.trim_end();
        let line = text.lines().count().max(1);
        let column = text.lines().last().map_or(0, |l| l.chars().count()) + 1;
        e.position = Some((line, column));
    }
    e
}

/// " at Line: 1, Column: 15" at the end of sqlparser's messages.
fn split_position(message: &str) -> (String, Option<(usize, usize)>) {
    let Some(i) = message.rfind(" at Line: ") else {
        return (message.to_string(), None);
    };
    let tail = &message[i + " at Line: ".len()..];
    let mut parts = tail.splitn(2, ", Column: ");
    let line = parts.next().and_then(|l| l.trim().parse().ok());
    let column = parts.next().and_then(|c| {
        c.trim()
            .trim_end_matches(|ch: char| !ch.is_ascii_digit())
            .parse()
            .ok()
    });
    match (line, column) {
        (Some(l), Some(c)) => (message[..i].to_string(), Some((l, c))),
        _ => (message.to_string(), None),
    }
}

/// One line, no backtraces or newlines.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(['.', ':', '!', '?', ',']) {
                " "
            } else {
                "; "
            });
        }
        out.push_str(line);
    }
    out
}

fn strip_prefixes(mut s: &str) -> &str {
    const PREFIXES: [&str; 9] = [
        "Error during planning: ",
        "Execution error: ",
        "This feature is not implemented: ",
        "Schema error: ",
        "Arrow error: ",
        "External error: ",
        "Internal error: ",
        "Invalid argument error: ",
        "Resources exhausted: ",
    ];
    loop {
        let before = s;
        for p in PREFIXES {
            s = s.strip_prefix(p).unwrap_or(s);
        }
        if s == before {
            return s;
        }
    }
}

/// Turns a DataFusion error into one readable line (with the SQL position when known).
fn describe_error(e: &DataFusionError, options: &EngineOptions) -> QueryError {
    let position = e.diagnostic().and_then(|d| d.span).and_then(|span| {
        (span.start.line > 0).then_some((span.start.line as usize, span.start.column as usize))
    });
    let root = e.find_root();
    match root {
        DataFusionError::SQL(p, _) => {
            let (message, pos) = match p.as_ref() {
                ParserError::ParserError(m) | ParserError::TokenizerError(m) => split_position(m),
                ParserError::RecursionLimitExceeded => {
                    ("the query is nested too deeply".to_string(), None)
                }
            };
            let message = message
                .strip_prefix("Expected: ")
                .map(|m| format!("expected {m}"))
                .unwrap_or(message);
            return QueryError {
                message: format!("syntax error: {}", one_line(&message)),
                position: pos.or(position),
            };
        }
        DataFusionError::ResourcesExhausted(m) => {
            let at = m
                .split("allocation failed for ")
                .nth(1)
                .and_then(|r| r.split(" with ").next())
                .map(|op| format!(" (in {op})"))
                .unwrap_or_default();
            return QueryError {
                message: format!(
                    "the query needs more than the {} MiB memory limit{at}: filter by datehour, aggregate, or add a LIMIT",
                    options.memory_limit_bytes >> 20,
                ),
                position,
            };
        }
        _ => {}
    }
    let mut text = strip_prefixes(&root.strip_backtrace()).to_string();
    // "Function 'f' user-defined coercion failed with: Error during planning: <ours>. No
    // function matches …": keep ours.
    if let Some((_, inner)) = text.split_once("coercion failed with: ") {
        let inner = strip_prefixes(inner);
        let inner = inner.split(". No function matches").next().unwrap_or(inner);
        text = inner.to_string();
    }
    let message = if let Some(rest) = text.strip_prefix("Invalid function '") {
        let name = rest.split('\'').next().unwrap_or_default();
        let hint = text
            .split("Did you mean '")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        format!("function {name} is not supported by the embedded engine{hint}")
    } else if let Some(kind) = [
        "DDL not supported: ",
        "DML not supported: ",
        "Statement not supported: ",
    ]
    .iter()
    .find_map(|p| text.strip_prefix(p))
    {
        read_only(kind.trim()).message
    } else if let Some(rest) = text.strip_prefix("table '") {
        let name = rest.split('\'').next().unwrap_or_default();
        let name = name.strip_prefix(&format!("{CATALOG}.")).unwrap_or(name);
        format!(
            "table {name} not found (the lake's table is {}.{})",
            options.database, options.table
        )
    } else if text.contains("only supports a single SQL statement") {
        "one statement at a time, please: remove all but one".to_string()
    } else {
        one_line(&text)
    };
    QueryError {
        message: one_line(&message),
        position,
    }
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

    #[test]
    fn statement_names() {
        assert_eq!(statement_name("CREATE TABLE t (a INT)"), "CREATE TABLE");
        assert_eq!(statement_name("INSERT INTO t VALUES (1)"), "INSERT INTO");
        assert_eq!(statement_name("DROP TABLE IF EXISTS t"), "DROP TABLE");
        assert_eq!(statement_name("SET x = 1"), "SET");
        assert_eq!(statement_name("x"), "this statement");
    }

    #[test]
    fn positions_come_out_of_parser_messages() {
        assert_eq!(
            split_position("Expected: end of statement, found: x at Line: 2, Column: 7"),
            (
                "Expected: end of statement, found: x".to_string(),
                Some((2, 7))
            )
        );
        assert_eq!(split_position("no position"), ("no position".into(), None));
    }
}
