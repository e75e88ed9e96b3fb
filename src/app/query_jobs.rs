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
    /// Signals when the latest query's task has ended (so quitting can wait for its stop).
    done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
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
            done: Mutex::new(None),
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
        let (ended, done) = std::sync::mpsc::channel();
        if let Ok(mut slot) = self.done.lock() {
            *slot = Some(done);
        }
        self.runtime.spawn(async move {
            let _ended = ended; // dropped when the task ends, however it ends
            let outcome = match run.await {
                Ok(out) => QueryOutcome::Done(out),
                Err(e) if cancel.is_stopped() => QueryOutcome::Cancelled(e.to_string()),
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

/// Quitting while a query runs cancels it and waits (a few seconds at most) for its engine to
/// stop it: an Athena query goes on, and is billed, until StopQueryExecution reaches it.
impl Drop for QueryJobs {
    fn drop(&mut self) {
        let running = self.running.lock().ok().and_then(|mut r| r.take());
        if let Some((_, flag)) = running {
            flag.stop();
            if let Some(done) = self.done.lock().ok().and_then(|mut d| d.take()) {
                let _ = done.recv_timeout(STOP_WAIT);
            }
        }
    }
}

/// How long quitting waits for a running query to be stopped.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
