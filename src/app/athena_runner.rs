//! The Query pane's runner on AWS: each query runs on Athena as a tokio task; its result comes
//! back as `Action::QueryFinished`. Cancelling sets the query's flag: the task stops the query
//! in Athena (StopQueryExecution) and reports it cancelled.

use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use super::engine_runner::table;
use super::query_pane::{QueryOutcome, QueryRunner};
use crate::action::Action;
use crate::backend::athena::Athena;
use crate::pipeline::StopFlag;

pub struct AthenaRunner {
    athena: Athena,
    max_rows: usize,
    runtime: tokio::runtime::Handle,
    tx: UnboundedSender<Action>,
    running: Mutex<Option<(u64, StopFlag)>>,
}

impl AthenaRunner {
    pub fn new(
        athena: Athena,
        max_rows: usize,
        runtime: tokio::runtime::Handle,
        tx: UnboundedSender<Action>,
    ) -> Self {
        AthenaRunner {
            athena,
            max_rows,
            runtime,
            tx,
            running: Mutex::new(None),
        }
    }
}

impl QueryRunner for AthenaRunner {
    fn start(&self, id: u64, sql: String) {
        let cancel = StopFlag::default();
        if let Ok(mut running) = self.running.lock()
            && let Some((_, old)) = running.replace((id, cancel.clone()))
        {
            old.stop();
        }
        let athena = self.athena.clone();
        let tx = self.tx.clone();
        let max_rows = self.max_rows;
        self.runtime.spawn(async move {
            let outcome = match athena.run(&sql, max_rows, &cancel).await {
                Ok(out) => QueryOutcome::Done(table(out)),
                Err(_) if cancel.is_stopped() => QueryOutcome::Cancelled,
                Err(e) => QueryOutcome::Failed(e.to_string()),
            };
            let _ = tx.send(Action::QueryFinished { id, outcome });
        });
    }

    fn cancel(&self, id: u64) {
        if let Ok(mut running) = self.running.lock()
            && running.as_ref().is_some_and(|(r, _)| *r == id)
            && let Some((_, flag)) = running.take()
        {
            flag.stop();
        }
    }
}
