//! SQL over the lake. [`QueryService`] runs a query, on the embedded engine here or on Athena
//! (`backend::aws::athena`); [`QueryOutput`] and [`QueryError`] are what both return, and
//! `format` prints them. Those need no SQL engine in the build; the rest of this module is the
//! embedded engine, the local "Athena" (the default feature `sql`):
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

#[cfg(feature = "sql")]
mod embedded;
#[cfg(feature = "sql")]
mod engine;
#[cfg(feature = "sql")]
mod error;
#[cfg(feature = "sql")]
mod execute;
mod format;
#[cfg(feature = "sql")]
pub mod functions;
#[cfg(feature = "sql")]
pub mod lake;
mod output;
#[cfg(feature = "sql")]
mod read_only;
mod service;

#[cfg(feature = "sql")]
pub use embedded::Embedded;
#[cfg(feature = "sql")]
pub use engine::{CATALOG, DEFAULT_MEMORY_LIMIT_BYTES, EngineOptions, QueryEngine};
pub use format::{format_csv, format_json, format_summary, format_table};
pub use output::{
    ATHENA_MINIMUM_MB, ATHENA_USD_PER_TB, Column, QueryError, QueryOutcome, QueryOutput,
    athena_cost_usd,
};
pub use service::{QueryService, stopped};
