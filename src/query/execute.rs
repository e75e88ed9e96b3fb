//! One statement from SQL text to rows: parse, check, plan, run, and keep at most `max_rows`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Ident, SelectItem, SetExpr, Statement as SqlStatement,
};
use futures::StreamExt;

use super::engine::{EngineOptions, MAX_SQL_TOKENS};
use super::error::{at_end_if_eof, describe_error};
use super::functions;
use super::lake::{self, ScanCounters};
use super::output::QueryError;
use super::output::{Column, QueryOutput};
use super::read_only::check_read_only;

/// How long to keep counting the rows that follow once `max_rows` is reached: enough for a
/// result that is already computed (sorted, aggregated), too little to finish a long scan.
const DRAIN_BUDGET: Duration = Duration::from_millis(100);

/// Parses, checks, plans and runs one statement (on the engine's runtime).
pub(super) async fn execute(
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
        skipped_objects: counters
            .skipped
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
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
        skipped_objects: Vec::new(),
        execution_id: None,
        elapsed,
    }
}
