//! The stack: the resources a backend runs the pipeline on, described the same way by both
//! backends. Locally they are folders and files under the data dir; on AWS, the CloudFormation
//! stack's resources. Above this line (the App, the headless commands) nothing names either: a
//! [`Stack`] describes itself as a typed [`StackSnapshot`], deploys and deletes itself, and
//! reports progress through a [`Say`] sink, never by printing.
//!
//! This module depends on nothing else in the crate but `text`, so `action` can carry its types.

use std::fmt;

/// How a status reads at a glance (the colour of its row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Ok,
    InProgress,
    Failed,
    /// Deleted, paused or stopped: not an error, not working either.
    Stopped,
    Missing,
}

/// A status as the backend names it (`CREATE_COMPLETE`, `ACTIVE`, `ok`, `missing`) and its
/// health. The label is shown as it is; decisions use the health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub label: String,
    pub health: Health,
}

impl Status {
    pub fn new(label: impl Into<String>, health: Health) -> Status {
        Status {
            label: label.into(),
            health,
        }
    }

    /// A local resource: `ok` when it exists, `missing` otherwise.
    pub fn present(exists: bool) -> Status {
        if exists {
            Status::new("ok", Health::Ok)
        } else {
            Status::new("missing", Health::Missing)
        }
    }

    /// A CloudFormation stack or resource status (`CREATE_COMPLETE`, `UPDATE_ROLLBACK_FAILED`, …).
    pub fn cloudformation(label: &str) -> Status {
        let health = if label.ends_with("_IN_PROGRESS") {
            Health::InProgress
        } else if label.contains("FAILED") || label.contains("ROLLBACK") {
            Health::Failed
        } else if label.starts_with("DELETE") {
            Health::Stopped
        } else {
            Health::Ok
        };
        Status::new(label, health)
    }

    pub fn in_progress(&self) -> bool {
        self.health == Health::InProgress
    }
}

/// `status`, or `status: reason` (the reason on one line) when there is one.
pub fn with_reason(status: &str, reason: &str) -> String {
    let reason = crate::text::one_line(reason);
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {reason}")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// One resource of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its name in the stack (a CloudFormation logical id, or `lake`, `readings stream`, …).
    pub name: String,
    /// What it is (`Kinesis::Stream`, `folder`, `file`).
    pub kind: String,
    pub status: Status,
    /// Where it is or why it is in its state (a path, a physical id, a reason).
    pub detail: String,
}

/// A stack as described at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSnapshot {
    /// Which stack: `local (/path/to/data)` or `aws (stack iotaa, eu-west-1)`.
    pub title: String,
    /// The stack's own status; `None` when it is not deployed.
    pub status: Option<Status>,
    /// Why it is in that status (empty when there is nothing to say).
    pub reason: String,
    pub resources: Vec<Resource>,
    /// Most recent last, one line each.
    pub events: Vec<String>,
    /// Key → value (the lake, the streams, …), in key order.
    pub outputs: Vec<(String, String)>,
    /// What delivers readings to the lake when it is not a stage of this process (Firehose on
    /// AWS), and its state; `None` when this process delivers.
    pub delivery: Option<Resource>,
    /// What scores the readings when it is not a stage of this process (the stack's Lambda
    /// function), its state, and its recent figures; `None` when this process scores.
    pub detector: Option<Resource>,
    pub detector_figures: Option<FunctionFigures>,
    /// What the stack costs while idle (AWS), as a row; `None` locally.
    pub standing_cost: Option<Resource>,
    /// Health beyond the resources' statuses: alarms and failure queues (AWS).
    pub watch: Vec<Resource>,
}

/// A function's figures over the last few minutes (CloudWatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FunctionFigures {
    /// The latest minute's maximum IteratorAge: how far behind the stream it reads. `None`
    /// without data (no invocation in the window).
    pub iterator_age_ms: Option<u64>,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub window_mins: u32,
}

impl FunctionFigures {
    /// `12 invocations, 0 errors, 0 throttles in 5 min, iterator age 0.4 s`.
    pub fn describe(&self) -> String {
        match self.iterator_age_ms {
            Some(ms) => format!(
                "{}, iterator age {:.1} s",
                self.counts(),
                ms as f64 / 1000.0
            ),
            None => self.counts(),
        }
    }

    /// `12 invocations, 0 errors, 0 throttles in 5 min`.
    pub fn counts(&self) -> String {
        format!(
            "{} invocations, {} errors, {} throttles in {} min",
            self.invocations, self.errors, self.throttles, self.window_mins
        )
    }

    /// Whether the function failed or was throttled in the window.
    pub fn troubled(&self) -> bool {
        self.errors > 0 || self.throttles > 0
    }
}

impl StackSnapshot {
    /// The stack's status with its reason, or `not deployed`.
    pub fn status_line(&self) -> String {
        match &self.status {
            None => "not deployed".to_string(),
            Some(s) => with_reason(&s.label, &self.reason),
        }
    }

    /// True while the stack (or any of its resources) is being changed.
    pub fn in_progress(&self) -> bool {
        self.status.as_ref().is_some_and(Status::in_progress)
            || self.resources.iter().any(|r| r.status.in_progress())
    }

    /// The rows `iotaa stack status` prints: the stack line, then one line per resource.
    pub fn status_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("{}: {}", self.title, self.status_line())];
        for r in self
            .resources
            .iter()
            .chain(&self.delivery)
            .chain(&self.detector)
            .chain(&self.watch)
            .chain(&self.standing_cost)
        {
            lines.push(format!(
                "  {:<28} {:<22} {:<18} {}",
                r.name, r.kind, r.status.label, r.detail
            ));
        }
        lines
    }
}

/// Where a deploy or delete says what happens: stdout and stderr for the `stack` commands, the
/// status line for the dashboard.
pub trait Say: Sync {
    fn out(&self, line: String);
    fn err(&self, line: String);
}

/// Lines to stdout, errors to stderr.
pub struct Stdio;

impl Say for Stdio {
    fn out(&self, line: String) {
        println!("{line}");
    }
    fn err(&self, line: String) {
        eprintln!("{line}");
    }
}

/// A backend's stack. Every call may block on I/O (disk, network): call it off the UI loop.
/// Errors are one line each.
pub trait Stack: Send + Sync {
    /// Which stack, for messages: `stack iotaa`, `the local stack`.
    fn name(&self) -> String;
    /// The stack as it is now.
    fn snapshot(&self) -> Result<StackSnapshot, String>;
    /// Creates the stack, or updates it, following it until it settles. `Ok(false)` when it
    /// settled in a failed state (already said through `say`).
    fn deploy(&self, say: &dyn Say) -> Result<bool, String>;
    /// What [`Stack::delete`] removes, as the question to ask first.
    fn delete_question(&self) -> String;
    /// Deletes the stack and everything in it (after the caller asked).
    fn delete(&self, say: &dyn Say) -> Result<bool, String>;
    /// Why the dashboard cannot deploy or delete this stack while it runs, if it cannot.
    fn dashboard_ops_refused(&self) -> Option<String> {
        None
    }
}

impl fmt::Debug for dyn Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stack")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudformation_statuses_have_their_health() {
        for (label, health) in [
            ("CREATE_COMPLETE", Health::Ok),
            ("UPDATE_COMPLETE", Health::Ok),
            ("CREATE_IN_PROGRESS", Health::InProgress),
            ("UPDATE_ROLLBACK_IN_PROGRESS", Health::InProgress),
            ("CREATE_FAILED", Health::Failed),
            ("ROLLBACK_COMPLETE", Health::Failed),
            ("UPDATE_ROLLBACK_COMPLETE", Health::Failed),
            ("DELETE_COMPLETE", Health::Stopped),
            ("DELETE_FAILED", Health::Failed),
        ] {
            assert_eq!(Status::cloudformation(label).health, health, "{label}");
        }
    }

    #[test]
    fn a_snapshot_says_its_status_and_whether_it_is_changing() {
        let mut snap = StackSnapshot {
            title: "aws (stack s, r)".into(),
            status: None,
            reason: String::new(),
            resources: vec![Resource {
                name: "Readings".into(),
                kind: "Kinesis::Stream".into(),
                status: Status::cloudformation("CREATE_COMPLETE"),
                detail: "iotaa-readings".into(),
            }],
            events: Vec::new(),
            outputs: Vec::new(),
            delivery: None,
            detector: None,
            detector_figures: None,
            standing_cost: None,
            watch: Vec::new(),
        };
        assert_eq!(snap.status_line(), "not deployed");
        snap.status = Some(Status::cloudformation("UPDATE_ROLLBACK_COMPLETE"));
        snap.reason = "Resource failed".into();
        assert_eq!(
            snap.status_line(),
            "UPDATE_ROLLBACK_COMPLETE: Resource failed"
        );
        assert!(!snap.in_progress());
        snap.resources[0].status = Status::cloudformation("UPDATE_IN_PROGRESS");
        assert!(snap.in_progress());
        let lines = snap.status_lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("Readings") && lines[1].contains("UPDATE_IN_PROGRESS"));
    }
}
