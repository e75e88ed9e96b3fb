//! The embedded engine as a [`QueryService`]: cancelling drops the query's future, which stops
//! DataFusion's scan.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::engine::{EngineOptions, QueryEngine};
use super::output::{QueryError, QueryOutput};
use super::service::{QueryService, stopped};
use crate::pipeline::StopFlag;

pub struct Embedded {
    engine: Arc<QueryEngine>,
    lake: String,
}

impl Embedded {
    /// The engine over `lake_dir`, whose objects sit under the Firehose key `prefix`.
    pub fn new(lake_dir: &Path, prefix: &str, options: EngineOptions) -> Result<Self, QueryError> {
        Ok(Embedded {
            engine: Arc::new(QueryEngine::with_key_prefix(lake_dir, prefix, options)?),
            lake: lake_dir.join(prefix).display().to_string(),
        })
    }
}

impl QueryService for Embedded {
    fn run(
        &self,
        sql: String,
        max_rows: Option<usize>,
        cancel: StopFlag,
    ) -> BoxFuture<'static, Result<QueryOutput, QueryError>> {
        let engine = self.engine.clone();
        Box::pin(async move {
            let max_rows = max_rows.unwrap_or(engine.options().max_rows);
            tokio::select! {
                result = engine.run_with_max_rows(&sql, max_rows) => result,
                () = stopped(&cancel) => Err(QueryError::new("cancelled")),
            }
        })
    }

    fn describe(&self) -> String {
        format!("the embedded engine over {}", self.lake)
    }
}
