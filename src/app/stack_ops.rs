//! The Stack pane's deploy and delete, on either backend's [`Stack`]: each runs on its own
//! thread, its lines (events, the final status) come back as `Action::StackOpLine` for the
//! status line, and the stack watcher is woken so the pane follows the stack while it changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::StackOps;
use crate::action::Action;
use crate::action::Sender;
use crate::stack::{Say, Stack};

pub struct StackRunner {
    stack: Arc<dyn Stack>,
    send: Sender,
    /// Wakes the stack watcher so the pane refreshes at once.
    wake: mpsc::Sender<()>,
    /// One operation at a time.
    busy: Arc<AtomicBool>,
}

impl StackRunner {
    pub fn new(stack: Arc<dyn Stack>, send: Sender, wake: mpsc::Sender<()>) -> Self {
        StackRunner {
            stack,
            send,
            wake,
            busy: Arc::default(),
        }
    }

    fn run(&self, delete: bool) {
        if self.busy.swap(true, Ordering::SeqCst) {
            (self.send)(Action::StackOpLine(
                "A deploy or delete started here is still running.".into(),
                true,
            ));
            return;
        }
        let stack = self.stack.clone();
        let say = ToStatusLine {
            send: self.send.clone(),
            wake: self.wake.clone(),
        };
        let busy = self.busy.clone();
        let started = std::thread::Builder::new()
            .name("stack-op".into())
            .spawn(move || {
                let _ = say.wake.send(());
                let result = if delete {
                    stack.delete(&say)
                } else {
                    stack.deploy(&say)
                };
                if let Err(e) = result {
                    (say.send)(Action::StackOpLine(e, true));
                }
                busy.store(false, Ordering::SeqCst);
                let _ = say.wake.send(());
            });
        if let Err(e) = started {
            self.busy.store(false, Ordering::SeqCst);
            (self.send)(Action::StackOpLine(
                format!("cannot start the stack operation: {e}"),
                true,
            ));
        }
    }
}

impl StackOps for StackRunner {
    fn name(&self) -> String {
        self.stack.name()
    }

    fn refused(&self) -> Option<String> {
        self.stack.dashboard_ops_refused()
    }

    fn delete_question(&self) -> String {
        self.stack.delete_question()
    }

    fn deploy(&self) {
        self.run(false);
    }

    fn delete(&self) {
        self.run(true);
    }
}

/// Each line to the status line (the pane shows the events themselves), and a refresh.
struct ToStatusLine {
    send: Sender,
    wake: mpsc::Sender<()>,
}

impl Say for ToStatusLine {
    fn out(&self, line: String) {
        // Indented lines list the outputs, which the pane shows already.
        if !line.starts_with("  ") {
            (self.send)(Action::StackOpLine(line.trim().to_string(), false));
        }
        let _ = self.wake.send(());
    }

    fn err(&self, line: String) {
        (self.send)(Action::StackOpLine(line.trim().to_string(), true));
        let _ = self.wake.send(());
    }
}
