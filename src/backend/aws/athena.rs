//! Queries on AWS: Athena in the stack's workgroup, over the Glue table the stack defines
//! (the same `devicedata` table as `queries/devicedata.sql`).
//!
//! A query is StartQueryExecution, then GetQueryExecution polled with backoff (100 ms growing
//! to 2 s) until it leaves QUEUED/RUNNING, then GetQueryResults page by page (at most 1,000
//! rows a page). The first row of a SELECT's first page repeats the column names and is not
//! data. Column types come from the result metadata; bytes scanned and time from the
//! execution's statistics, and the cost from the bytes as Athena bills them
//! ([`QueryOutput::cost_usd`]). Cancelling calls StopQueryExecution, so a cancelled query stops
//! scanning (and billing) in AWS too.

use std::time::{Duration, Instant};

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};

use super::{Deployed, error_line};
use crate::pipeline::StopFlag;
use crate::query::{Column, QueryError, QueryOutput, QueryService};

/// GetQueryResults returns at most this many rows a page.
pub const PAGE_ROWS: i32 = 1_000;
const FIRST_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Athena {
    client: Client,
    workgroup: String,
    database: String,
    /// `query.max_rows`, when a caller does not say.
    max_rows: usize,
    /// The workgroup's BytesScannedCutoffPerQuery (output AthenaBytesScannedCutoff), when the
    /// stack says.
    cutoff: Option<u64>,
}

impl QueryService for Athena {
    fn run(
        &self,
        sql: String,
        max_rows: Option<usize>,
        cancel: StopFlag,
    ) -> futures::future::BoxFuture<'static, Result<QueryOutput, QueryError>> {
        let athena = self.clone();
        let max_rows = max_rows.unwrap_or(self.max_rows);
        Box::pin(async move { athena.execute(&sql, max_rows, &cancel).await })
    }

    fn describe(&self) -> String {
        let limit = match self.cutoff {
            Some(bytes) => format!(", at most {} scanned a query", crate::text::bytes(bytes)),
            None => String::new(),
        };
        format!(
            "Athena (workgroup {}, database {}{limit})",
            self.workgroup, self.database
        )
    }
}

impl Athena {
    /// Athena on the deployed stack's workgroup and database.
    pub fn new(deployed: &Deployed, max_rows: usize) -> color_eyre::eyre::Result<Athena> {
        Ok(Athena {
            client: Client::new(&deployed.sdk),
            workgroup: deployed.output("AthenaWorkGroup")?.to_string(),
            database: deployed.output("GlueDatabaseName")?.to_string(),
            max_rows,
            cutoff: deployed
                .outputs
                .get("AthenaBytesScannedCutoff")
                .and_then(|v| v.parse().ok()),
        })
    }

    pub fn workgroup(&self) -> &str {
        &self.workgroup
    }

    /// Runs `sql`, keeping at most `max_rows` rows. Setting `cancel` stops the query in
    /// Athena and returns the error "cancelled".
    pub async fn execute(
        &self,
        sql: &str,
        max_rows: usize,
        cancel: &StopFlag,
    ) -> Result<QueryOutput, QueryError> {
        let started = Instant::now();
        let id = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&self.database)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| QueryError::new(format!("Athena: {}", error_line(&e))))?
            .query_execution_id()
            .unwrap_or_default()
            .to_string();
        let mut wait = FIRST_POLL;
        let execution = loop {
            if cancel.is_stopped() {
                return Err(self.stop(&id).await);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(MAX_POLL);
            if cancel.is_stopped() {
                return Err(self.stop(&id).await);
            }
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(|e| QueryError::new(format!("Athena query {id}: {}", error_line(&e))))?;
            let Some(execution) = out.query_execution().cloned() else {
                continue;
            };
            let status = execution.status();
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => break execution,
                Some(QueryExecutionState::Failed) => {
                    let reason = status
                        .and_then(|s| s.state_change_reason())
                        .unwrap_or("no reason given");
                    return Err(QueryError::new(format!(
                        "Athena query {id} failed: {reason}"
                    )));
                }
                Some(QueryExecutionState::Cancelled) => {
                    return Err(QueryError::new(format!("cancelled (Athena query {id})")));
                }
                _ => {}
            }
        };
        let select = execution
            .statement_type()
            .is_none_or(|t| t.as_str() == "DML");
        let bytes_scanned = execution
            .statistics()
            .and_then(|s| s.data_scanned_in_bytes())
            .unwrap_or(0)
            .max(0) as u64;
        let (columns, rows, more_rows) = self.results(&id, select, max_rows, cancel).await?;
        Ok(QueryOutput {
            columns,
            rows,
            dropped_rows: None,
            more_rows,
            bytes_scanned,
            files_scanned: 0,
            malformed_lines: 0,
            skipped_objects: Vec::new(),
            elapsed: started.elapsed(),
            execution_id: Some(id),
        })
    }

    async fn stop(&self, id: &str) -> QueryError {
        match self
            .client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await
        {
            Ok(_) => QueryError::new(format!(
                "cancelled: Athena query {id} stopped{}",
                self.billed_after_stop(id).await
            )),
            Err(e) => QueryError::new(format!(
                "cancelled, but stopping Athena query {id} failed: {}",
                error_line(&e)
            )),
        }
    }

    /// What a stopped query scanned and costs, `; it scanned X ($Y)`, once Athena has it (it
    /// is billed for what it scanned before it stopped); empty when Athena does not say within
    /// a few seconds.
    async fn billed_after_stop(&self, id: &str) -> String {
        let mut wait = FIRST_POLL;
        for _ in 0..8 {
            let Ok(out) = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
            else {
                return String::new();
            };
            let execution = out.query_execution();
            let done = execution
                .and_then(|e| e.status())
                .and_then(|s| s.state())
                .is_some_and(|s| {
                    matches!(
                        s,
                        QueryExecutionState::Cancelled
                            | QueryExecutionState::Failed
                            | QueryExecutionState::Succeeded
                    )
                });
            if done {
                let bytes = execution
                    .and_then(|e| e.statistics())
                    .and_then(|s| s.data_scanned_in_bytes())
                    .unwrap_or(0)
                    .max(0) as u64;
                return format!(
                    "; it scanned {} (${:.6})",
                    crate::text::bytes(bytes),
                    crate::query::athena_cost_usd(bytes)
                );
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(MAX_POLL);
        }
        String::new()
    }

    /// Every page of the result, up to `max_rows` rows; true when more rows were left.
    async fn results(
        &self,
        id: &str,
        select: bool,
        max_rows: usize,
        cancel: &StopFlag,
    ) -> Result<(Vec<Column>, Vec<Vec<Option<String>>>, bool), QueryError> {
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let mut token: Option<String> = None;
        let mut first = true;
        loop {
            if cancel.is_stopped() {
                return Err(QueryError::new(format!("cancelled (Athena query {id})")));
            }
            let out = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .max_results(PAGE_ROWS)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    QueryError::new(format!("Athena query {id} results: {}", error_line(&e)))
                })?;
            let Some(set) = out.result_set() else {
                break;
            };
            if first {
                columns = set
                    .result_set_metadata()
                    .map(|m| {
                        m.column_info()
                            .iter()
                            .map(|c| Column {
                                name: c.name().to_string(),
                                data_type: c.r#type().to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
            let mut page: Vec<Vec<Option<String>>> = set
                .rows()
                .iter()
                .map(|r| {
                    r.data()
                        .iter()
                        .map(|d| d.var_char_value().map(str::to_string))
                        .collect()
                })
                .collect();
            if first && select && is_header(page.first(), &columns) {
                page.remove(0);
            }
            first = false;
            for row in page {
                if rows.len() == max_rows {
                    return Ok((columns, rows, true));
                }
                rows.push(row);
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
            if rows.len() == max_rows {
                return Ok((columns, rows, true));
            }
        }
        Ok((columns, rows, false))
    }
}

/// The first row of a SELECT's first page: the column names again.
fn is_header(row: Option<&Vec<Option<String>>>, columns: &[Column]) -> bool {
    row.is_some_and(|row| {
        row.len() == columns.len()
            && row
                .iter()
                .zip(columns)
                .all(|(v, c)| v.as_deref() == Some(c.name.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Column {
        Column {
            name: name.into(),
            data_type: "varchar".into(),
        }
    }

    #[test]
    fn the_header_row_is_the_column_names_in_order() {
        let cols = [col("deviceid"), col("n")];
        let row = |a: &str, b: &str| Some(vec![Some(a.to_string()), Some(b.to_string())]);
        assert!(is_header(row("deviceid", "n").as_ref(), &cols));
        assert!(!is_header(row("n", "deviceid").as_ref(), &cols));
        assert!(!is_header(row("aaaa", "3").as_ref(), &cols));
        assert!(!is_header(Some(&vec![None, None]), &cols));
        assert!(!is_header(None, &cols));
    }
}
