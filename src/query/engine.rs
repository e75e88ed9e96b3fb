//! The engine: one DataFusion session over the lake, run on its own tokio runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use datafusion::common::TableReference;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;

use super::error::describe_error;
use super::execute::execute;
use super::functions;
use super::lake::LakeTable;
use super::output::QueryError;
use super::output::QueryOutput;
use crate::text::one_line;

/// Default memory pool for one engine (all its queries together).
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 512 * 1024 * 1024;

/// Stack of the engine's threads. Planning and evaluating a deeply nested expression recurses
/// (in a debug build, over 10 KiB per level); this is address space, touched only as used.
const QUERY_STACK_BYTES: usize = 256 << 20;

/// Longest SQL accepted, in tokens: far more than any hand-written query, little enough that
/// the deepest expression it can spell fits [`QUERY_STACK_BYTES`].
pub(super) const MAX_SQL_TOKENS: usize = 10_000;

/// Athena's catalog name, so `awsdatacatalog.analyticsdemo.devicedata` works too.
pub const CATALOG: &str = "awsdatacatalog";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    pub database: String,
    pub table: String,
    pub max_rows: usize,
    pub memory_limit_bytes: usize,
}

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

    /// An engine over `lake_dir` whose objects sit under the Firehose key `prefix`
    /// (`readings/` → `lake_dir/readings/YYYY/…`; `raw-` → `lake_dir/raw-YYYY/…`).
    pub fn with_key_prefix(
        lake_dir: &Path,
        prefix: &str,
        options: EngineOptions,
    ) -> Result<QueryEngine, QueryError> {
        let (root, year_prefix) = super::lake::split_prefix(lake_dir, prefix);
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
                year_prefix,
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
