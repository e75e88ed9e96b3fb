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
        if let Some((_, flag)) = self.running.lock().ok().and_then(|mut r| r.take()) {
            flag.stop();
        }
        // The latest query's task, running or cancelled a moment ago and still stopping; one
        // that has ended returns at once.
        if let Some(done) = self.done.lock().ok().and_then(|mut d| d.take()) {
            let _ = done.recv_timeout(STOP_WAIT);
        }
    }
}

/// How long quitting waits for a running query to be stopped.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QueryError, QueryOutput};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A fake engine whose queries run until cancelled, then take a moment to stop (as an
    /// Athena query does until StopQueryExecution returns) and record that they did.
    struct FakeSlowEngine {
        stopped: Arc<AtomicBool>,
    }

    impl QueryService for FakeSlowEngine {
        fn run(
            &self,
            _sql: String,
            _max_rows: Option<usize>,
            cancel: StopFlag,
        ) -> futures::future::BoxFuture<'static, Result<QueryOutput, QueryError>> {
            let stopped = self.stopped.clone();
            Box::pin(async move {
                crate::query::stopped(&cancel).await;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                stopped.store(true, Ordering::SeqCst);
                Err(QueryError::new("cancelled: stopped".to_string()))
            })
        }

        fn describe(&self) -> String {
            "fake".into()
        }
    }

    #[test]
    fn quitting_while_a_query_runs_waits_for_its_engine_to_stop_it() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let engine = Arc::new(FakeSlowEngine {
            stopped: stopped.clone(),
        });
        let jobs = QueryJobs::new(engine, runtime.handle().clone(), Arc::new(|_| true));
        jobs.start(1, "SELECT 1".into());
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(jobs);
        assert!(
            stopped.load(Ordering::SeqCst),
            "dropping the runner returned before the query was stopped"
        );
    }
}
