//! The Stack pane's deploy and delete on AWS: each runs as a tokio task, its lines (events,
//! the final status) come back as `Action::StackOpLine` for the status line, and the stack
//! watcher is woken so the pane follows the stack while it is in progress.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::StackOps;
use crate::action::Action;
use crate::backend::aws::{self, Say};
use crate::config::Loaded;

pub struct AwsStackOps {
    loaded: Loaded,
    runtime: tokio::runtime::Handle,
    tx: UnboundedSender<Action>,
    /// Wakes [`aws::watch`] so the pane refreshes at once.
    wake: Arc<Notify>,
    /// One operation at a time.
    busy: Arc<AtomicBool>,
}

impl AwsStackOps {
    pub fn new(
        loaded: Loaded,
        runtime: tokio::runtime::Handle,
        tx: UnboundedSender<Action>,
        wake: Arc<Notify>,
    ) -> Self {
        AwsStackOps {
            loaded,
            runtime,
            tx,
            wake,
            busy: Arc::default(),
        }
    }

    fn run(&self, delete: bool) {
        if self.busy.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(Action::StackOpLine(
                "A deploy or delete started here is still running.".into(),
                true,
            ));
            return;
        }
        let loaded = self.loaded.clone();
        let tx = self.tx.clone();
        let wake = self.wake.clone();
        let busy = self.busy.clone();
        self.runtime.spawn(async move {
            let say = ToStatusLine {
                tx: tx.clone(),
                wake: wake.clone(),
            };
            wake.notify_one();
            let result = if delete {
                aws::delete(&loaded, aws::POLL, &say).await
            } else {
                aws::deploy(&loaded, aws::POLL, &say).await
            };
            if let Err(e) = result {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                let _ = tx.send(Action::StackOpLine(chain.join(": "), true));
            }
            busy.store(false, Ordering::SeqCst);
            wake.notify_one();
        });
    }
}

impl StackOps for AwsStackOps {
    fn deploy(&self) {
        self.run(false);
    }

    fn delete(&self) {
        self.run(true);
    }
}

/// Each line to the status line (the pane shows the events themselves), and a refresh.
struct ToStatusLine {
    tx: UnboundedSender<Action>,
    wake: Arc<Notify>,
}

impl Say for ToStatusLine {
    fn out(&self, line: String) {
        // Indented lines list the outputs, which the pane shows already.
        if !line.starts_with("  ") {
            let _ = self
                .tx
                .send(Action::StackOpLine(line.trim().to_string(), false));
        }
        self.wake.notify_one();
    }

    fn err(&self, line: String) {
        let _ = self
            .tx
            .send(Action::StackOpLine(line.trim().to_string(), true));
        self.wake.notify_one();
    }
}
