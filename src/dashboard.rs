//! The dashboard's wiring, one function for the terminal (`iotaa`) and for `iotaa soak`: the
//! backend's pipeline with the dashboard's stages, an [`App`] attached to its producer, its
//! stack and its query engine, and a watcher that sends the stack's snapshots. Everything the
//! App hears arrives as an [`Action`] through `send`.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use crate::action::{Action, Sender};
use crate::app::App;
use crate::app::query_jobs::QueryJobs;
use crate::app::stack_ops::StackRunner;
use crate::backend::Backend;
use crate::config::Loaded;
use crate::pipeline::Reporter;
use crate::pipeline::run::{Pipeline, PipelineSettings};
use crate::stack::Stack;

/// How often the stack is described while it is changing, and otherwise.
const STACK_BUSY_EVERY: Duration = Duration::from_secs(3);
const STACK_IDLE_EVERY: Duration = Duration::from_secs(30);

/// The dashboard's running parts. [`Running::shutdown`] stops them in order.
pub struct Running {
    pipeline: Pipeline,
    /// Dropping it ends the stack watcher.
    _watch: mpsc::Sender<()>,
    /// Kept alive: the streams, the stack and the query engine use its runtime.
    backend: Backend,
}

impl Running {
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.backend.runtime()
    }

    /// Stops the producer, drains the consumers, saves the model.
    pub fn shutdown(self) {
        self.pipeline.shutdown();
    }
}

/// Starts the pipeline with `settings` (the plan's dashboard stages, or a variation of them)
/// and an App wired to it.
pub fn start(
    loaded: &Loaded,
    backend: Backend,
    settings: PipelineSettings,
    send: Sender,
) -> Result<(App, Running)> {
    let mut app = App::new(loaded, crate::logging::log_file(&loaded.data_dir));
    let report: Reporter = {
        let send = send.clone();
        Arc::new(move |event| {
            send(Action::Pipeline(event));
        })
    };
    let pipeline = Pipeline::start(backend.streams.clone(), settings, report)
        .wrap_err("cannot start the pipeline")?;
    if let Some(c) = pipeline.controller() {
        app.attach_producer(c);
    }
    let (wake, woken) = mpsc::channel();
    watch_stack(backend.stack.clone(), woken, send.clone())?;
    app.attach_stack_ops(Arc::new(StackRunner::new(
        backend.stack.clone(),
        send.clone(),
        wake.clone(),
    )));
    match &backend.query {
        Ok(engine) => app.attach_query_runner(Arc::new(QueryJobs::new(
            engine.clone(),
            backend.runtime(),
            send,
        ))),
        Err(why) => app.query_unavailable(format!("No query engine: {why}")),
    }
    Ok((
        app,
        Running {
            pipeline,
            _watch: wake,
            backend,
        },
    ))
}

/// Describes the stack now, then every 3 s while it is changing and every 30 s otherwise, and
/// at once when woken (a deploy or delete started in the dashboard). Ends when nobody listens
/// or every waker is gone.
fn watch_stack(stack: Arc<dyn Stack>, woken: mpsc::Receiver<()>, send: Sender) -> Result<()> {
    std::thread::Builder::new()
        .name("stack-watch".into())
        .spawn(move || {
            loop {
                let snapshot = stack.snapshot();
                let busy = snapshot.as_ref().is_ok_and(|s| s.in_progress());
                if !send(Action::Stack(snapshot)) {
                    return;
                }
                let pause = if busy {
                    STACK_BUSY_EVERY
                } else {
                    STACK_IDLE_EVERY
                };
                match woken.recv_timeout(pause) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .wrap_err("cannot start the stack watcher")?;
    Ok(())
}
