//! [`QueryService`]: what runs a query for the Query pane and `iotaa query`, the embedded
//! engine or Athena, behind one trait, so neither caller knows which.

use futures::future::BoxFuture;

use super::output::{QueryError, QueryOutput};
use crate::pipeline::StopFlag;

/// Runs queries over the lake.
pub trait QueryService: Send + Sync {
    /// Runs one statement, keeping at most `max_rows` rows (`None`: the configured
    /// `query.max_rows`). Setting `cancel` stops it where it runs (the embedded scan, or the
    /// query in Athena with StopQueryExecution) and it returns an error soon after.
    fn run(
        &self,
        sql: String,
        max_rows: Option<usize>,
        cancel: StopFlag,
    ) -> BoxFuture<'static, Result<QueryOutput, QueryError>>;

    /// What it queries, for the Query pane's title and messages.
    fn describe(&self) -> String;
}

/// Resolves once `flag` is set (checked every 50 ms): for racing a query that cannot watch the
/// flag itself.
pub async fn stopped(flag: &StopFlag) {
    while !flag.is_stopped() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
