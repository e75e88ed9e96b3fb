//! The Query pane's one job runner, for whichever engine the backend has (embedded or
//! Athena): each query runs as a task on the backend's runtime and its result comes back as
//! `Action::QueryFinished`. The latest query wins: starting one cancels the one running, and
//! cancelling sets the query's flag, which stops it where it runs (the embedded scan, or the
//! query in Athena).

use std::sync::{Arc, Mutex};

use super::query_pane::QueryRunner;
use crate::action::Action;
use crate::action::Sender;
use crate::pipeline::StopFlag;
use crate::query::{QueryOutcome, QueryService};

pub struct QueryJobs {
    engine: Arc<dyn QueryService>,
    runtime: tokio::runtime::Handle,
    send: Sender,
    running: Mutex<Option<(u64, StopFlag)>>,
}

impl QueryJobs {
    pub fn new(
        engine: Arc<dyn QueryService>,
        runtime: tokio::runtime::Handle,
        send: Sender,
    ) -> Self {
        QueryJobs {
            engine,
            runtime,
            send,
            running: Mutex::new(None),
        }
    }
}

impl QueryRunner for QueryJobs {
    fn start(&self, id: u64, sql: String) {
        let cancel = StopFlag::default();
        if let Ok(mut running) = self.running.lock()
            && let Some((_, old)) = running.replace((id, cancel.clone()))
        {
            old.stop();
        }
        let run = self.engine.run(sql, None, cancel.clone());
        let send = self.send.clone();
        self.runtime.spawn(async move {
            let outcome = match run.await {
                Ok(out) => QueryOutcome::Done(out),
                Err(_) if cancel.is_stopped() => QueryOutcome::Cancelled,
                Err(e) => QueryOutcome::Failed(e.to_string()),
            };
            send(Action::QueryFinished { id, outcome });
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
