//! The Stack pane: where the config came from, this process's stages (live), then the
//! backend's stack as last described (its status, resources, events and outputs, typed the
//! same way by both backends); deploy and delete go through [`StackOps`].

use std::collections::BTreeMap;
use std::sync::Arc;

use ui::{Health, Notice, NoticeLevel, ResourceRow, StackView};

use crate::action::Action;
use crate::config::{Loaded, Source};
use crate::pipeline::{Event, Stage, StageState};
use crate::stack::{self, StackSnapshot};

/// Deploys or deletes the backend's stack off the UI loop; progress comes back as
/// `Action::StackOpLine` (see `stack_ops`).
pub trait StackOps: Send + Sync {
    /// Which stack, for messages: `stack iotaa`.
    fn name(&self) -> String;
    /// Why the dashboard cannot deploy or delete this stack, if it cannot.
    fn refused(&self) -> Option<String>;
    /// What a delete removes, as a question.
    fn delete_question(&self) -> String;
    fn deploy(&self);
    fn delete(&self);
}

impl std::fmt::Debug for dyn StackOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StackOps")
    }
}

/// A stack status's health as the pane colours it.
fn health(h: stack::Health) -> Health {
    match h {
        stack::Health::Ok => Health::Ok,
        stack::Health::InProgress => Health::InProgress,
        stack::Health::Failed => Health::Failed,
        stack::Health::Stopped => Health::Stopped,
        stack::Health::Missing => Health::Missing,
    }
}

/// A stage's state as a health and the word its detail starts with.
fn stage_health(state: StageState) -> (Health, &'static str) {
    match state {
        StageState::Starting => (Health::InProgress, ""),
        StageState::Running => (Health::Ok, ""),
        StageState::Paused => (Health::Stopped, "paused: "),
        StageState::Blocked => (Health::Failed, "blocked: "),
        StageState::Stopped => (Health::Stopped, ""),
        StageState::Failed => (Health::Failed, ""),
    }
}

/// The Stack pane's state.
#[derive(Debug)]
pub struct StackPane {
    /// Where the config came from: known at start, no disk access while drawing.
    config_row: ResourceRow,
    stages: BTreeMap<Stage, (StageState, String)>,
    /// The backend's stack as last described (by the watcher, off the UI loop), or why it
    /// could not be.
    snapshot: Option<Result<StackSnapshot, String>>,
    /// Runs deploy and delete for the pane's keys.
    ops: Option<Arc<dyn StackOps>>,
}

impl StackPane {
    pub fn new(loaded: &Loaded) -> Self {
        let config_row = match &loaded.source {
            Source::File(p) => ResourceRow {
                name: "config".into(),
                kind: "file".into(),
                health: Health::Ok,
                detail: p.display().to_string(),
            },
            Source::Defaults => ResourceRow {
                name: "config".into(),
                kind: "defaults".into(),
                health: Health::Ok,
                detail: "built-in (no config file found)".into(),
            },
        };
        StackPane {
            config_row,
            stages: BTreeMap::new(),
            snapshot: None,
            ops: None,
        }
    }

    pub fn attach_ops(&mut self, ops: Arc<dyn StackOps>) {
        self.ops = Some(ops);
    }

    /// What `stage` last reported.
    pub fn stage_state(&self, stage: Stage) -> Option<StageState> {
        self.stages.get(&stage).map(|(s, _)| *s)
    }

    /// Folds a stage report into its row. Returns whether the pane changed.
    pub fn on_event(&mut self, event: &Event) -> bool {
        let Event::Stage {
            stage,
            state,
            detail,
        } = event
        else {
            return false;
        };
        self.stages.insert(*stage, (*state, detail.clone()));
        true
    }

    /// A new description of the stack. Returns whether it differs.
    pub fn set_snapshot(&mut self, snapshot: Result<StackSnapshot, String>) -> bool {
        let changed = self.snapshot.as_ref() != Some(&snapshot);
        self.snapshot = Some(snapshot);
        changed
    }

    /// What delivers to the lake when this process does not (Firehose on AWS), and its state.
    pub fn delivery_note(&self) -> Option<String> {
        match &self.snapshot {
            Some(Ok(snap)) => snap
                .delivery
                .as_ref()
                .map(|d| format!("{} {}: {}", d.kind, d.status.label, d.detail)),
            _ => None,
        }
    }

    /// The question to ask before `op` (deploy or delete), or why it cannot run.
    pub fn confirm_question(&self, op: &Action) -> Result<String, Notice> {
        let Some(ops) = &self.ops else {
            return Err(Notice {
                level: NoticeLevel::Warning,
                text: "Stack operations are not available.".into(),
            });
        };
        if let Some(why) = ops.refused() {
            return Err(Notice {
                level: NoticeLevel::Info,
                text: why,
            });
        }
        Ok(if *op == Action::DeployStack {
            format!(
                "Deploy {} (create or update, parameters from the config)? y: yes, any other key: no",
                ops.name()
            )
        } else {
            format!("{} y: yes, any other key: no", ops.delete_question())
        })
    }

    /// Starts a confirmed deploy or delete; says so, or `None` when there is nothing to run it.
    pub fn run(&self, op: &Action) -> Option<String> {
        let ops = self.ops.as_ref()?;
        if *op == Action::DeployStack {
            ops.deploy();
        } else {
            ops.delete();
        }
        Some(format!(
            "{}: {} started",
            ops.name(),
            op.name().unwrap_or_default()
        ))
    }

    /// The pane; `live(stage)` gives the latest counts of a stage for its row.
    pub fn view(&self, live: impl Fn(Stage) -> String) -> StackView {
        let mut resources = vec![self.config_row.clone()];
        for (stage, (state, detail)) in &self.stages {
            let (health, word) = stage_health(*state);
            let live = live(*stage);
            resources.push(ResourceRow {
                name: stage.name().into(),
                kind: "stage".into(),
                health,
                // Live figures last: a narrow pane cuts details on the left.
                detail: if live.is_empty() {
                    format!("{word}{detail}")
                } else {
                    format!("{word}{detail} · {live}")
                },
            });
        }
        let (backend, events, outputs) = match &self.snapshot {
            None => ("describing the stack…".to_string(), Vec::new(), Vec::new()),
            Some(Err(e)) => (format!("stack: {e}"), Vec::new(), Vec::new()),
            Some(Ok(snap)) => {
                resources.extend(
                    snap.resources
                        .iter()
                        .chain(&snap.delivery)
                        .chain(&snap.detector)
                        .chain(&snap.watch)
                        .chain(&snap.standing_cost)
                        .map(row),
                );
                (
                    format!("{}: {}", snap.title, snap.status_line()),
                    snap.events.clone(),
                    snap.outputs.clone(),
                )
            }
        };
        StackView {
            backend,
            resources,
            events,
            outputs,
        }
    }
}

/// A kind's last two `::` parts (`AWS::Kinesis::Stream` → `Kinesis::Stream`): the pane is narrow.
fn short_kind(kind: &str) -> &str {
    match kind.rmatch_indices("::").nth(1) {
        Some((i, _)) => &kind[i + 2..],
        None => kind,
    }
}

/// One of the stack's resources as a row: its status label first in the detail.
fn row(r: &stack::Resource) -> ResourceRow {
    ResourceRow {
        name: r.name.clone(),
        kind: short_kind(&r.kind).to_string(),
        health: health(r.status.health),
        detail: if r.detail.is_empty() {
            r.status.label.clone()
        } else {
            format!("{} · {}", r.status.label, r.detail)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_shortened_to_their_last_two_parts() {
        assert_eq!(short_kind("AWS::Kinesis::Stream"), "Kinesis::Stream");
        assert_eq!(short_kind("Kinesis::Stream"), "Kinesis::Stream");
        assert_eq!(short_kind("folder"), "folder");
    }
}
