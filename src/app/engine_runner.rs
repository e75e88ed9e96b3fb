//! The Query pane's runner on the embedded engine: each query runs as a tokio task; its result
//! comes back as `Action::QueryFinished`; cancelling aborts the task, which drops DataFusion's
//! stream and stops the scan.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use super::query_pane::{QueryOutcome, QueryRunner, ResultTable};
use crate::action::Action;
use crate::query::{QueryEngine, QueryOutput};

pub struct EngineRunner {
    engine: Arc<QueryEngine>,
    runtime: tokio::runtime::Handle,
    tx: UnboundedSender<Action>,
    running: Mutex<Option<(u64, AbortHandle)>>,
}

impl EngineRunner {
    pub fn new(
        engine: QueryEngine,
        runtime: tokio::runtime::Handle,
        tx: UnboundedSender<Action>,
    ) -> Self {
        EngineRunner {
            engine: Arc::new(engine),
            runtime,
            tx,
            running: Mutex::new(None),
        }
    }
}

/// Bytes as `1.2 MB`.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / (1u64 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// The pane's table from the engine's output: the summary says rows, bytes scanned, files,
/// time and what Athena would charge; the note says what was dropped or skipped.
pub fn table(out: QueryOutput) -> ResultTable {
    let cost = out.cost_usd();
    let summary = match &out.execution_id {
        // Athena reports bytes scanned but not objects; the query id finds it in the console.
        Some(id) => format!(
            "{} rows · {} scanned · {:.2} s · Athena cost ≈ ${cost:.6} · query {id}",
            out.rows.len(),
            bytes(out.bytes_scanned),
            out.elapsed.as_secs_f64()
        ),
        None => format!(
            "{} rows · {} scanned · {} files · {:.2} s · Athena would charge ${cost:.6}",
            out.rows.len(),
            bytes(out.bytes_scanned),
            out.files_scanned,
            out.elapsed.as_secs_f64()
        ),
    };
    let mut notes = Vec::new();
    if out.more_rows {
        notes.push(match out.dropped_rows {
            Some(n) => format!("{n} more rows dropped (query.max_rows)"),
            None => "more rows were dropped (query.max_rows)".to_string(),
        });
    }
    if out.malformed_lines > 0 {
        notes.push(format!("{} malformed lines skipped", out.malformed_lines));
    }
    ResultTable {
        columns: out
            .columns
            .into_iter()
            .map(|c| (c.name, c.data_type))
            .collect(),
        rows: out.rows,
        summary,
        note: (!notes.is_empty()).then(|| notes.join(" · ")),
    }
}

impl QueryRunner for EngineRunner {
    fn start(&self, id: u64, sql: String) {
        let engine = self.engine.clone();
        let tx = self.tx.clone();
        let task = self.runtime.spawn(async move {
            let outcome = match engine.run(&sql).await {
                Ok(out) => QueryOutcome::Done(table(out)),
                Err(e) => QueryOutcome::Failed(e.to_string()),
            };
            let _ = tx.send(Action::QueryFinished { id, outcome });
        });
        if let Ok(mut running) = self.running.lock()
            && let Some((_, old)) = running.replace((id, task.abort_handle()))
        {
            old.abort();
        }
    }

    fn cancel(&self, id: u64) {
        if let Ok(mut running) = self.running.lock()
            && running.as_ref().is_some_and(|(r, _)| *r == id)
            && let Some((_, task)) = running.take()
        {
            task.abort();
        }
    }
}
