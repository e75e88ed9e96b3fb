//! The Stack pane: this process's resources and stages, and on AWS the CloudFormation stack
//! as last described; deploy and delete go through [`StackOps`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ui::{Health, Notice, NoticeLevel, ResourceRow, StackView};

use crate::action::Action;
use crate::backend::aws::StackSnapshot;
use crate::config::{Backend, Loaded, Source};
use crate::pipeline::{Event, Stage, StageState};

/// Deploys or deletes the stack off the UI loop; progress comes back as
/// `Action::StackOpLine`. The AWS backend implements it (see `main.rs`).
pub trait StackOps: Send + Sync {
    fn deploy(&self);
    fn delete(&self);
}

impl std::fmt::Debug for dyn StackOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StackOps")
    }
}

/// A CloudFormation status as a health.
fn cloud_health(status: &str) -> Health {
    if status.ends_with("_IN_PROGRESS") {
        Health::InProgress
    } else if status.contains("FAILED") || status.contains("ROLLBACK") {
        Health::Failed
    } else if status.starts_with("DELETE") {
        Health::Stopped
    } else {
        Health::Ok
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
    backend: Backend,
    /// The config, data dir and log rows: checked once at start, no disk access while drawing.
    local_rows: Vec<ResourceRow>,
    stages: BTreeMap<Stage, (StageState, String)>,
    /// On AWS: the CloudFormation stack as last described, or why it could not be.
    cloud: Option<Result<StackSnapshot, String>>,
    /// On AWS: runs deploy and delete for the pane's keys.
    ops: Option<Arc<dyn StackOps>>,
    name: String,
}

impl StackPane {
    pub fn new(loaded: &Loaded, log_file: &Path) -> Self {
        let exists = |ok: bool| if ok { Health::Ok } else { Health::Missing };
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
        let local_rows = vec![
            config_row,
            ResourceRow {
                name: "data dir".into(),
                kind: "folder".into(),
                health: exists(loaded.data_dir.is_dir()),
                detail: loaded.data_dir.display().to_string(),
            },
            ResourceRow {
                name: "log".into(),
                kind: "file".into(),
                health: exists(log_file.is_file()),
                detail: log_file.display().to_string(),
            },
        ];
        StackPane {
            backend: loaded.config.backend,
            local_rows,
            stages: BTreeMap::new(),
            cloud: None,
            ops: None,
            name: loaded.config.aws.stack_name.clone(),
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

    /// A new description of the CloudFormation stack. Returns whether it differs.
    pub fn set_cloud(&mut self, snapshot: Result<StackSnapshot, String>) -> bool {
        let changed = self.cloud.as_ref() != Some(&snapshot);
        self.cloud = Some(snapshot);
        changed
    }

    /// On AWS Firehose delivers: its status from the last stack snapshot.
    pub fn delivery_note(&self) -> Option<String> {
        if self.backend != Backend::Aws {
            return None;
        }
        Some(match &self.cloud {
            Some(Ok(snap)) => match &snap.firehose {
                Some(f) => format!("Firehose {f}"),
                None => "Firehose: the stack has no delivery stream output".into(),
            },
            Some(Err(_)) => "Firehose: status unknown (see the Stack pane)".into(),
            None => "Firehose: status not read yet".into(),
        })
    }

    /// The question to ask before `op` (deploy or delete), or why it cannot run.
    pub fn confirm_question(&self, op: &Action) -> Result<String, Notice> {
        if self.backend != Backend::Aws {
            return Err(Notice {
                level: NoticeLevel::Info,
                text: "The local stack is the data folder: `iotaa stack deploy|delete` after quitting."
                    .into(),
            });
        }
        if self.ops.is_none() {
            return Err(Notice {
                level: NoticeLevel::Warning,
                text: "Stack operations are not available.".into(),
            });
        }
        Ok(if *op == Action::DeployStack {
            format!(
                "Deploy stack {} (create or update, parameters from the config)? y: yes, any other key: no",
                self.name
            )
        } else {
            format!(
                "DELETE stack {} and every resource in it, the lake's objects too? y: yes, any other key: no",
                self.name
            )
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
            "stack {}: {} started",
            self.name,
            op.name().unwrap_or_default()
        ))
    }

    /// The pane; `live(stage)` gives the latest counts of a stage for its row.
    pub fn view(&self, live: impl Fn(Stage) -> String) -> StackView {
        let mut resources = self.local_rows.clone();
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
        let (backend, events, outputs) = match &self.cloud {
            None if self.backend == Backend::Aws => (
                "aws (describing the stack…)".to_string(),
                Vec::new(),
                Vec::new(),
            ),
            None => (self.backend.to_string(), Vec::new(), Vec::new()),
            Some(Err(e)) => (format!("aws: {e}"), Vec::new(), Vec::new()),
            Some(Ok(snap)) => {
                // The config row, this process's stages (live), then the stack's resources.
                resources.retain(|r| r.name == "config" || r.kind == "stage");
                resources.extend(cloud_rows(snap));
                let status = if snap.reason.is_empty() {
                    snap.status.clone()
                } else {
                    format!("{}: {}", snap.status, snap.reason)
                };
                (
                    format!("aws (stack {}, {}): {status}", snap.stack, snap.region),
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

/// The stack's resources, then its delivery stream's status.
fn cloud_rows(snap: &StackSnapshot) -> Vec<ResourceRow> {
    let mut rows: Vec<ResourceRow> = snap
        .resources
        .iter()
        .map(|[logical, kind, status, physical]| ResourceRow {
            name: logical.clone(),
            kind: kind.trim_start_matches("AWS::").to_string(),
            health: cloud_health(status),
            detail: format!("{status} · {physical}"),
        })
        .collect();
    if let Some(f) = &snap.firehose {
        rows.push(ResourceRow {
            name: "delivery".into(),
            kind: "Firehose".into(),
            health: if f.contains(": ACTIVE") {
                Health::Ok
            } else {
                Health::Failed
            },
            detail: f.clone(),
        });
    }
    rows
}
