//! The dashboard's state. `App::update` is the only place it changes; `App::view` turns it
//! into the `ui` crate's plain view structs.

#[cfg(feature = "sql")]
pub mod athena_runner;
#[cfg(feature = "sql")]
pub mod engine_runner;
pub mod query_pane;
pub mod stack_ops;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::KeyEvent;
use ui::{
    AlertRow, DashboardView, Health, HelpRow, HelpSection, HelpView, Notice, NoticeLevel, PaneId,
    ResourceRow, ScoreStats, ScoresView, StackView, StatusView, ThroughputStats, ThroughputView,
};

use crate::action::{Action, BINDABLE, Scope};
use crate::config::{Backend, Loaded, Source};
use crate::keymap::{KeyBinding, Keymap};
use crate::pipeline::producer::Control;
use crate::pipeline::run::Controller;
use crate::pipeline::{Event, ProducerCounts, ScoringProgress, Stage, StageState};
use query_pane::{QueryPane, QueryRunner, load_examples};

/// Seconds of throughput history kept (one bin per tick).
pub const HISTORY_BINS: usize = 600;
/// Scores kept for the Scores pane.
pub const SCORES_KEPT: usize = 4_000;
/// Alerts listed in the Scores pane.
pub const ALERTS_KEPT: usize = 50;

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

/// What the pipeline has reported, for the panes. Every buffer is bounded.
#[derive(Debug, Default)]
struct PipelineState {
    stages: BTreeMap<Stage, (StageState, String)>,
    producer: Option<ProducerCounts>,
    /// Acknowledged readings and bytes at the last tick, to bin the rate.
    acked_at_tick: u64,
    bytes_at_tick: u64,
    /// Readings acknowledged per tick (about one per second), oldest first.
    history: VecDeque<u64>,
    bytes_last_bin: u64,
    objects: u64,
    delivery_lag_secs: Option<f64>,
    scoring: Option<ScoringProgress>,
    scores: VecDeque<f64>,
    alerts: VecDeque<AlertRow>,
    alerts_total: u64,
}

/// The dashboard's state.
#[derive(Debug)]
pub struct App {
    keymap: Keymap,
    backend: Backend,
    source: Source,
    data_dir: PathBuf,
    log_file: PathBuf,
    data_dir_exists: bool,
    log_file_exists: bool,
    query: QueryPane,
    focus: PaneId,
    zoomed: bool,
    help_open: bool,
    quitting: bool,
    notice: Option<Notice>,
    size: (u16, u16),
    threshold: f64,
    controller: Option<Controller>,
    pipeline: PipelineState,
    /// On AWS: the CloudFormation stack as last described, or why it could not be.
    cloud: Option<Result<crate::backend::aws::StackSnapshot, String>>,
    /// On AWS: runs deploy and delete for the Stack pane's keys.
    stack_ops: Option<Arc<dyn StackOps>>,
    /// A stack operation waiting for `y`.
    confirming: Option<Action>,
    stack_name: String,
}

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

impl App {
    pub fn new(loaded: &Loaded, log_file: PathBuf) -> Self {
        let q = &loaded.config.query;
        App {
            keymap: loaded.keymap.clone(),
            backend: loaded.config.backend,
            source: loaded.source.clone(),
            data_dir: loaded.data_dir.clone(),
            data_dir_exists: loaded.data_dir.is_dir(),
            log_file_exists: log_file.is_file(),
            log_file,
            query: QueryPane::new(
                &format!(
                    "SELECT deviceid, count(*) AS readings,\n       max(sensorreading) AS max_reading\nFROM {}.{}\nGROUP BY deviceid\nORDER BY deviceid",
                    q.database, q.table
                ),
                load_examples(&loaded.queries_dir),
                Some(loaded.data_dir.join("query_history.jsonl")),
                loaded.data_dir.join("exports"),
            ),
            focus: PaneId::Stack,
            zoomed: false,
            help_open: false,
            quitting: false,
            notice: None,
            size: (0, 0),
            threshold: loaded.config.alerts.threshold,
            controller: None,
            pipeline: PipelineState::default(),
            cloud: None,
            stack_ops: None,
            confirming: None,
            stack_name: loaded.config.aws.stack_name.clone(),
        }
    }

    /// Lets the Stack pane's keys deploy and delete the stack (AWS).
    pub fn attach_stack_ops(&mut self, ops: Arc<dyn StackOps>) {
        self.stack_ops = Some(ops);
    }

    /// Connects the Query pane to an engine.
    pub fn attach_query_runner(&mut self, runner: Arc<dyn QueryRunner>) {
        self.query.attach_runner(runner);
    }

    /// Says in the Query pane why queries cannot run.
    pub fn query_unavailable(&mut self, why: String) {
        self.query.set_unavailable(why);
    }

    /// The SQL in the editor.
    pub fn query_sql(&self) -> String {
        self.query.sql()
    }

    /// Connects the keys `a`, `p`, `+`, `-` to a running producer.
    pub fn attach_producer(&mut self, controller: Controller) {
        self.controller = Some(controller);
    }

    pub fn should_quit(&self) -> bool {
        self.quitting
    }

    pub fn focus(&self) -> PaneId {
        self.focus
    }

    /// The action a key press stands for in the current state, if any.
    pub fn action_for_key(&self, event: &KeyEvent) -> Option<Action> {
        let key = KeyBinding::from_event(event)?;
        if self.confirming.is_some() {
            // `y` confirms the stack operation; any other key cancels it.
            let yes =
                matches!(key.key, crate::keymap::Key::Char('y' | 'Y')) && !key.ctrl && !key.alt;
            return Some(Action::Confirm(yes));
        }
        let in_query = self.focus == PaneId::Query && !self.help_open;
        let action = self.keymap.action_for(&key, in_query);
        if self.help_open {
            // While help is open: the help key or Esc closes it, quit still quits, and
            // nothing else happens behind the overlay.
            return match action {
                Some(Action::Quit) | Some(Action::Help) => action,
                _ if key == KeyBinding::plain(crate::keymap::Key::Esc) => Some(Action::Help),
                _ => None,
            };
        }
        if in_query && self.query.picker_open() {
            // A list is open: move, pick, close; quit still quits.
            return match action {
                Some(
                    Action::ScrollUp
                    | Action::ScrollDown
                    | Action::PageUp
                    | Action::PageDown
                    | Action::EditQuery
                    | Action::LeaveEditor
                    | Action::Quit,
                ) => action,
                _ => None,
            };
        }
        if in_query && self.query.editing() {
            // The editor takes every key but run, cancel and leave.
            return match action {
                Some(Action::RunQuery | Action::CancelQuery | Action::LeaveEditor) => action,
                _ => Some(Action::EditorInput(*event)),
            };
        }
        action
    }

    /// Applies one action. Returns whether anything visible changed (the loop redraws only
    /// then).
    pub fn update(&mut self, action: Action) -> bool {
        match action {
            Action::Quit => {
                self.quitting = true;
                true
            }
            Action::Help => {
                self.help_open = !self.help_open;
                true
            }
            Action::FocusNext => self.set_focus(self.focus.next()),
            Action::FocusPrev => self.set_focus(self.focus.prev()),
            Action::FocusStack => self.set_focus(PaneId::Stack),
            Action::FocusThroughput => self.set_focus(PaneId::Throughput),
            Action::FocusScores => self.set_focus(PaneId::Scores),
            Action::FocusQuery => self.set_focus(PaneId::Query),
            Action::Zoom => {
                self.zoomed = !self.zoomed;
                true
            }
            Action::FireAnomaly => self.control(Control::Spike {
                device: None,
                value: None,
            }),
            Action::TogglePause => self.control(Control::TogglePause),
            Action::RateUp => self.control(Control::ScaleRate(2.0)),
            Action::RateDown => self.control(Control::ScaleRate(0.5)),
            Action::EditQuery => {
                if self.query.picker_open() {
                    self.query.pick()
                } else {
                    self.query.set_editing(true)
                }
            }
            Action::LeaveEditor => self.query.close_picker() | self.query.set_editing(false),
            Action::RunQuery => match self.query.run() {
                Ok(()) => true,
                Err(why) => self.notify(NoticeLevel::Warning, format!("run_query: {why}")),
            },
            Action::CancelQuery => {
                if self.query.cancel() {
                    true
                } else {
                    self.notify(NoticeLevel::Info, "No query is running (q quits).".into())
                }
            }
            Action::Examples => match self.query.open_examples() {
                Ok(()) => true,
                Err(why) => self.notify(NoticeLevel::Warning, why),
            },
            Action::History => match self.query.open_history() {
                Ok(()) => true,
                Err(why) => self.notify(NoticeLevel::Warning, why),
            },
            Action::ExportCsv => match self.query.export_csv(chrono::Utc::now()) {
                Ok(path) => self.notify(
                    NoticeLevel::Info,
                    format!("Result exported to {}", path.display()),
                ),
                Err(why) => self.notify(NoticeLevel::Warning, why),
            },
            Action::ScrollUp => self.query.scroll(-1, 0),
            Action::ScrollDown => self.query.scroll(1, 0),
            Action::PageUp => self.query.scroll(-(self.page_rows() as isize), 0),
            Action::PageDown => self.query.scroll(self.page_rows() as isize, 0),
            Action::ScrollLeft => self.query.scroll(0, -1),
            Action::ScrollRight => self.query.scroll(0, 1),
            Action::EditorInput(key) => self.query.input(key),
            Action::Paste(text) => {
                if self.focus == PaneId::Query {
                    // Pasting SQL starts editing: nothing pasted is lost.
                    self.query.set_editing(true);
                    self.query.paste(&text)
                } else {
                    self.notify(
                        NoticeLevel::Info,
                        "Paste SQL into the Query pane (4, then enter).".into(),
                    )
                }
            }
            Action::QueryFinished { id, outcome } => self.query.finished(id, outcome),
            Action::Resize(w, h) => {
                let changed = self.size != (w, h);
                self.size = (w, h);
                changed
            }
            Action::Tick => self.query.tick() | self.tick(),
            Action::Pipeline(event) => self.on_event(event),
            Action::DeployStack | Action::DeleteStack => self.ask_stack_op(action),
            Action::Confirm(yes) => {
                let Some(op) = self.confirming.take() else {
                    return false;
                };
                match (&self.stack_ops, yes) {
                    (Some(ops), true) => {
                        if op == Action::DeployStack {
                            ops.deploy();
                        } else {
                            ops.delete();
                        }
                        self.notify(
                            NoticeLevel::Info,
                            format!(
                                "stack {}: {} started",
                                self.stack_name,
                                op.name().unwrap_or_default()
                            ),
                        )
                    }
                    _ => self.notify(
                        NoticeLevel::Info,
                        "Cancelled: the stack is unchanged.".into(),
                    ),
                }
            }
            Action::StackOpLine(line, error) => self.notify(
                if error {
                    NoticeLevel::Error
                } else {
                    NoticeLevel::Info
                },
                line,
            ),
            Action::CloudStack(snapshot) => {
                let changed = self.cloud.as_ref() != Some(&snapshot);
                self.cloud = Some(snapshot);
                changed
            }
        }
    }

    /// Rows a page-up/down moves: the terminal's height less the chrome, at least 1.
    fn page_rows(&self) -> usize {
        (self.size.1 as usize).saturating_sub(12).max(1)
    }

    fn control(&mut self, c: Control) -> bool {
        let sent = self.controller.as_ref().is_some_and(|p| p.send(c));
        if sent {
            false
        } else {
            self.notify(
                NoticeLevel::Warning,
                "No producer is running: start the dashboard on the local backend.".into(),
            )
        }
    }

    /// Closes one throughput bin. Nothing changes (and nothing is redrawn) while no producer
    /// runs or while it is paused with nothing sent.
    fn tick(&mut self) -> bool {
        let p = &mut self.pipeline;
        let Some(counts) = p.producer else {
            return false;
        };
        let acked = counts.acknowledged - p.acked_at_tick.min(counts.acknowledged);
        if counts.paused && acked == 0 {
            return false;
        }
        p.bytes_last_bin = counts.bytes - p.bytes_at_tick.min(counts.bytes);
        p.acked_at_tick = counts.acknowledged;
        p.bytes_at_tick = counts.bytes;
        p.history.push_back(acked);
        while p.history.len() > HISTORY_BINS {
            p.history.pop_front();
        }
        true
    }

    fn on_event(&mut self, event: Event) -> bool {
        let p = &mut self.pipeline;
        match event {
            Event::Stage {
                stage,
                state,
                detail,
            } => {
                match state {
                    StageState::Failed | StageState::Blocked => {
                        let word = if state == StageState::Failed {
                            "failed"
                        } else {
                            "blocked"
                        };
                        tracing::error!(stage = stage.name(), "{word}: {detail}");
                        self.notice = Some(Notice {
                            level: NoticeLevel::Error,
                            text: format!("{} {word}: {detail}", stage.name()),
                        });
                    }
                    // A blocked stage that resumes says so where it said it was blocked.
                    StageState::Running
                        if p.stages.get(&stage).map(|(s, _)| *s) == Some(StageState::Blocked) =>
                    {
                        tracing::info!(stage = stage.name(), "{detail}");
                        self.notice = Some(Notice {
                            level: NoticeLevel::Info,
                            text: format!("{} resumed: {detail}", stage.name()),
                        });
                    }
                    _ => {}
                }
                p.stages.insert(stage, (state, detail));
            }
            Event::Producer(counts) => {
                if p.producer.is_none() {
                    p.acked_at_tick = counts.acknowledged;
                    p.bytes_at_tick = counts.bytes;
                }
                p.producer = Some(counts);
            }
            Event::Spike { device, value } => {
                self.notice = Some(Notice {
                    level: NoticeLevel::Info,
                    text: format!("Spike sent: {device} = {value}"),
                });
            }
            Event::Delivered {
                objects, lag_secs, ..
            } => {
                p.objects = objects;
                p.delivery_lag_secs = Some(lag_secs);
            }
            Event::Scoring(progress) => p.scoring = Some(progress),
            Event::Scores(batch) => {
                p.scores.extend(batch.iter().map(|s| s.anomaly_score));
                while p.scores.len() > SCORES_KEPT {
                    p.scores.pop_front();
                }
            }
            Event::Alert(alert) => {
                let r = &alert.scored.reading;
                self.notice = Some(Notice {
                    level: NoticeLevel::Error,
                    text: format!(
                        "{} {} = {}, score {:.2}",
                        alert.subject, r.device_id, r.sensor_reading, alert.scored.anomaly_score
                    ),
                });
                p.alerts.push_front(AlertRow {
                    time: alert
                        .alert_time
                        .get(11..19)
                        .unwrap_or(&alert.alert_time)
                        .to_string(),
                    device: r.device_id.clone(),
                    value: r.sensor_reading,
                    score: alert.scored.anomaly_score,
                    explanation: alert.scored.explanation_summary(),
                });
                p.alerts.truncate(ALERTS_KEPT);
                p.alerts_total += 1;
            }
            Event::Problem { stage, message } => {
                tracing::warn!(stage = stage.name(), "{message}");
                self.notice = Some(Notice {
                    level: NoticeLevel::Warning,
                    text: format!("{}: {message}", stage.name()),
                });
            }
        }
        true
    }

    fn set_focus(&mut self, pane: PaneId) -> bool {
        let changed = self.focus != pane;
        self.focus = pane;
        changed
    }

    /// Asks before deploying or deleting the stack (AWS only).
    fn ask_stack_op(&mut self, op: Action) -> bool {
        if self.backend != Backend::Aws {
            return self.notify(
                NoticeLevel::Info,
                "The local stack is the data folder: `iotaa stack deploy|delete` after quitting."
                    .into(),
            );
        }
        if self.stack_ops.is_none() {
            return self.notify(
                NoticeLevel::Warning,
                "Stack operations are not available.".into(),
            );
        }
        let question = if op == Action::DeployStack {
            format!(
                "Deploy stack {} (create or update, parameters from the config)? y: yes, any other key: no",
                self.stack_name
            )
        } else {
            format!(
                "DELETE stack {} and every resource in it, the lake's objects too? y: yes, any other key: no",
                self.stack_name
            )
        };
        self.confirming = Some(op);
        self.notify(NoticeLevel::Warning, question)
    }

    fn notify(&mut self, level: NoticeLevel, text: String) -> bool {
        let notice = Some(Notice { level, text });
        let changed = self.notice != notice;
        self.notice = notice;
        changed
    }

    pub fn view(&self) -> DashboardView {
        DashboardView {
            title: format!("iotaa · {} · {}", self.backend, self.data_dir.display()),
            focus: self.focus,
            zoomed: self.zoomed,
            stack: self.stack_view(),
            throughput: self.throughput_view(),
            scores: self.scores_view(),
            query: self.query.view(),
            status: self.status_view(),
            help: self.help_open.then(|| self.help_view()),
        }
    }

    fn throughput_view(&self) -> ThroughputView {
        let p = &self.pipeline;
        ThroughputView {
            stats: p.producer.map(|c| ThroughputStats {
                records_per_sec: p.history.back().copied().unwrap_or(0) as f64,
                bytes_per_sec: p.bytes_last_bin as f64,
                sent: c.sent,
                acknowledged: c.acknowledged,
                failed: c.failed,
                retries: c.retries,
                delivery_lag_secs: p.delivery_lag_secs,
                objects_delivered: p.objects,
                delivery_note: self.delivery_note(),
                history: p.history.iter().copied().collect(),
                bin_label: "1 s".into(),
                paused: c.paused,
            }),
            waiting_for: "Waiting for the producer: no readings sent yet.".into(),
        }
    }

    /// On AWS Firehose delivers: its status from the last stack snapshot.
    fn delivery_note(&self) -> Option<String> {
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

    fn scores_view(&self) -> ScoresView {
        let p = &self.pipeline;
        let stats = (p.scoring.is_some() || !p.scores.is_empty()).then(|| {
            let progress = p.scoring.unwrap_or_default();
            ScoreStats {
                scores: p.scores.iter().copied().collect(),
                threshold: self.threshold,
                latest: p.scores.back().copied(),
                warming_up: progress.warming_up,
                lag_records: progress.lag_records,
                alerts: p.alerts.iter().cloned().collect(),
            }
        });
        ScoresView {
            stats,
            waiting_for: "Waiting for the anomaly stream: no scored readings yet.".into(),
        }
    }

    /// The latest counts of a stage, for its Stack row.
    fn live_figures(&self, stage: Stage) -> String {
        let p = &self.pipeline;
        match stage {
            Stage::Producer => p.producer.map_or(String::new(), |c| {
                format!(
                    "{} sent, {} acked, {} failed",
                    c.sent, c.acknowledged, c.failed
                )
            }),
            Stage::Delivery => match p.delivery_lag_secs {
                Some(lag) => format!("{} objects, lag {lag:.1} s", p.objects),
                None => String::new(),
            },
            Stage::Scoring => match p.scoring {
                Some(ScoringProgress {
                    warming_up: Some((seen, needed)),
                    ..
                }) => format!("warming up {seen}/{needed}"),
                Some(s) => s.describe(),
                None => String::new(),
            },
            Stage::Alerts => format!("{} alerts", p.alerts_total),
            Stage::Tail => format!("{} scores shown", p.scores.len()),
        }
    }

    fn stack_view(&self) -> StackView {
        // Checked once at start (App::new): no disk access while drawing.
        let exists = |ok: bool| if ok { Health::Ok } else { Health::Missing };
        let config_row = match &self.source {
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
        let mut resources = vec![
            config_row,
            ResourceRow {
                name: "data dir".into(),
                kind: "folder".into(),
                health: exists(self.data_dir_exists),
                detail: self.data_dir.display().to_string(),
            },
            ResourceRow {
                name: "log".into(),
                kind: "file".into(),
                health: exists(self.log_file_exists),
                detail: self.log_file.display().to_string(),
            },
        ];
        for (stage, (state, detail)) in &self.pipeline.stages {
            let (health, word) = match state {
                StageState::Starting => (Health::InProgress, ""),
                StageState::Running => (Health::Ok, ""),
                StageState::Paused => (Health::Stopped, "paused: "),
                StageState::Blocked => (Health::Failed, "blocked: "),
                StageState::Stopped => (Health::Stopped, ""),
                StageState::Failed => (Health::Failed, ""),
            };
            let live = self.live_figures(*stage);
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
                // The config row, this process's stages (live), then the stack's resources.
                resources.retain(|r| r.name == "config" || r.kind == "stage");
                resources.extend(rows);
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

    /// The most useful keys, as bound: the status line never shows a key that does not work.
    fn status_view(&self) -> StatusView {
        let mut hints = Vec::new();
        let mut hint = |action: Action, label: &str| {
            if let Some(key) = self.keymap.keys_for(&action).first() {
                hints.push((key.to_string(), label.to_string()));
            }
        };
        hint(Action::Quit, "quit");
        hint(Action::Help, "help");
        hint(Action::FocusNext, "focus");
        hint(Action::Zoom, if self.zoomed { "unzoom" } else { "zoom" });
        if self.focus == PaneId::Query && self.query.editing() {
            hint(Action::LeaveEditor, "leave editor");
            hint(Action::RunQuery, "run");
        } else if self.focus == PaneId::Query {
            hint(Action::EditQuery, "edit");
            hint(Action::RunQuery, "run");
            hint(Action::Examples, "examples");
            hint(Action::History, "history");
        } else {
            hint(Action::FireAnomaly, "anomaly");
            hint(Action::TogglePause, "pause");
        }
        StatusView {
            hints,
            notice: self.notice.clone(),
        }
    }

    fn help_view(&self) -> HelpView {
        let section = |title: &str, scope: Scope| HelpSection {
            title: title.into(),
            rows: BINDABLE
                .iter()
                .filter(|(_, s, _)| *s == scope)
                .map(|(action, _, description)| HelpRow {
                    keys: match self.keymap.describe(action) {
                        k if k.is_empty() => "(unbound)".into(),
                        k => k,
                    },
                    action: action.name().unwrap_or("?").into(),
                    description: (*description).into(),
                })
                .collect(),
        };
        HelpView {
            sections: vec![
                section("Everywhere", Scope::Global),
                section("In the Query pane", Scope::QueryPane),
            ],
            footer: format!(
                "Rebind keys by action name in [keys] of {}. Log: {}",
                match &self.source {
                    Source::File(p) => p.display().to_string(),
                    Source::Defaults => "config.toml".into(),
                },
                self.log_file.display()
            ),
        }
    }
}
