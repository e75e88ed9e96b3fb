//! The dashboard's state. `App::update` is the only place it changes; `App::view` turns it
//! into the `ui` crate's plain view structs.
//!
//! The `App` keeps the action loop (keys to actions, focus, zoom, help, quit) and hands
//! everything else to the pane components: each owns its state, folds the pipeline's events
//! into it and builds its view ([`stack`], [`throughput`], [`scores`], [`query_pane`], the
//! [`status`] line and the [`help`] overlay).

pub mod help;
pub mod query_jobs;
pub mod query_pane;
pub mod scores;
pub mod series;
pub mod stack;
pub mod stack_ops;
pub mod status;
pub mod throughput;

use std::path::PathBuf;
use std::sync::Arc;

use crossterm::event::KeyEvent;
use ui::{DashboardView, NoticeLevel, PaneId};

use crate::action::{Action, Scope};
use crate::config::{Loaded, Source};
use crate::keymap::{KeyBinding, Keymap};
use crate::pipeline::producer::Control;
use crate::pipeline::run::Controller;
use crate::pipeline::{Event, Stage};
use query_pane::{QueryPane, QueryRunner, load_examples};
use scores::ScoresPane;
pub use scores::{ALERTS_KEPT, DEVICE_SCORES_KEPT, DEVICES_KEPT, SCORES_KEPT};
pub use stack::StackOps;
use stack::StackPane;
use status::StatusLine;
pub use throughput::HISTORY_BINS;
use throughput::ThroughputPane;

/// The dashboard's state.
#[derive(Debug)]
pub struct App {
    keymap: Keymap,
    /// The backend's name, for the title.
    backend_name: String,
    source: Source,
    data_dir: PathBuf,
    log_file: PathBuf,
    focus: PaneId,
    zoomed: bool,
    help_open: bool,
    quitting: bool,
    size: (u16, u16),
    controller: Option<Controller>,
    /// Now, in ms since the epoch: when a throughput bin closes (tests set their own).
    clock: fn() -> i64,
    stack: StackPane,
    throughput: ThroughputPane,
    scores: ScoresPane,
    query: QueryPane,
    status: StatusLine,
}

impl App {
    pub fn new(loaded: &Loaded, log_file: PathBuf) -> Self {
        let q = &loaded.config.query;
        App {
            keymap: loaded.keymap.clone(),
            backend_name: loaded.config.backend.to_string(),
            source: loaded.source.clone(),
            data_dir: loaded.data_dir.clone(),
            focus: PaneId::Stack,
            zoomed: false,
            help_open: false,
            quitting: false,
            size: (0, 0),
            controller: None,
            clock: || chrono::Utc::now().timestamp_millis(),
            stack: StackPane::new(loaded),
            throughput: ThroughputPane::default(),
            scores: ScoresPane::new(loaded.config.alerts.threshold),
            query: QueryPane::new(
                &format!(
                    "SELECT deviceid, count(*) AS readings,\n       max(sensorreading) AS max_reading\nFROM {}.{}\nGROUP BY deviceid\nORDER BY deviceid",
                    q.database, q.table
                ),
                load_examples(&loaded.queries_dir),
                Some(loaded.data_dir.join("query_history.jsonl")),
                loaded.data_dir.join("exports"),
            ),
            status: StatusLine::default(),
            log_file,
        }
    }

    /// Lets the Stack pane's keys deploy and delete the backend's stack.
    pub fn attach_stack_ops(&mut self, ops: Arc<dyn StackOps>) {
        self.stack.attach_ops(ops);
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

    /// Replaces the clock that stamps throughput bins (ms since the epoch), for tests.
    pub fn set_clock(&mut self, clock: fn() -> i64) {
        self.clock = clock;
    }

    /// The device the Scores pane charts (`None`: all devices).
    pub fn scores_device(&self) -> Option<&str> {
        self.scores.focused_device()
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
        if self.status.confirming() {
            // `y` confirms the stack operation; any other key cancels it.
            let yes =
                matches!(key.key, crate::keymap::Key::Char('y' | 'Y')) && !key.ctrl && !key.alt;
            return Some(Action::Confirm(yes));
        }
        let in_query = self.focus == PaneId::Query && !self.help_open;
        let pane = match self.focus {
            _ if self.help_open => Scope::Global,
            PaneId::Query => Scope::QueryPane,
            PaneId::Scores => Scope::ScoresPane,
            PaneId::Stack | PaneId::Throughput => Scope::Global,
        };
        let action = self.keymap.action_for(&key, pane);
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
            Action::ScrollUp => self.scroll(-1),
            Action::ScrollDown => self.scroll(1),
            Action::PageUp => self.scroll(-(self.page_rows() as isize)),
            Action::PageDown => self.scroll(self.page_rows() as isize),
            Action::NextDevice => self.scores.cycle_device(1),
            Action::PrevDevice => self.scores.cycle_device(-1),
            Action::AlertHistory { alerts, skipped } => {
                let changed = self.scores.load_history(&alerts);
                if skipped > 0 {
                    self.notify(
                        NoticeLevel::Warning,
                        format!(
                            "alerts.log: {skipped} unreadable line(s) skipped; {} alerts read back",
                            alerts.len()
                        ),
                    )
                } else {
                    changed
                }
            }
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
            Action::Tick => self.query.tick() | self.throughput.tick((self.clock)()),
            Action::Pipeline(event) => self.on_event(event),
            Action::DeployStack | Action::DeleteStack => self.ask_stack_op(action),
            Action::Confirm(yes) => {
                let Some(op) = self.status.take_confirming() else {
                    return false;
                };
                // Stop what this process sends before the stack goes: a producer writing
                // while the stack is deleted only makes errors (and, with the lake kept, late
                // objects in it).
                let paused = yes
                    && op == Action::DeleteStack
                    && self.throughput.producer_running()
                    && self
                        .controller
                        .as_ref()
                        .is_some_and(|p| p.send(Control::TogglePause));
                match yes.then(|| self.stack.run(&op)).flatten() {
                    Some(started) if paused => self.notify(
                        NoticeLevel::Info,
                        format!("Producer paused before deleting the stack; {started}"),
                    ),
                    Some(started) => self.notify(NoticeLevel::Info, started),
                    None => self.notify(
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
            Action::Stack(snapshot) => {
                let figures = snapshot.as_ref().ok().and_then(|s| s.detector_figures);
                let scores = self.scores.set_remote(figures);
                self.stack.set_snapshot(snapshot) || scores
            }
        }
    }

    /// Rows a page-up/down moves: the terminal's height less the chrome, at least 1.
    fn page_rows(&self) -> usize {
        (self.size.1 as usize).saturating_sub(12).max(1)
    }

    /// Scrolls the focused pane's list: the Scores pane's alert history, else the query
    /// result.
    fn scroll(&mut self, rows: isize) -> bool {
        if self.focus == PaneId::Scores {
            self.scores.scroll(rows)
        } else {
            self.query.scroll(rows, 0)
        }
    }

    fn control(&mut self, c: Control) -> bool {
        let sent = self.controller.as_ref().is_some_and(|p| p.send(c));
        if sent {
            false
        } else {
            self.notify(
                NoticeLevel::Warning,
                "No producer is running in this process.".into(),
            )
        }
    }

    /// Hands a pipeline event to every component it concerns. Every event changes something.
    fn on_event(&mut self, event: Event) -> bool {
        let was = match &event {
            Event::Stage { stage, .. } => self.stack.stage_state(*stage),
            _ => None,
        };
        // `|`, not `||`: every component sees the event.
        self.status.on_event(&event, was)
            | self.stack.on_event(&event)
            | self.throughput.on_event(&event)
            | self.scores.on_event(&event)
    }

    fn set_focus(&mut self, pane: PaneId) -> bool {
        let changed = self.focus != pane;
        self.focus = pane;
        changed
    }

    /// Asks before deploying or deleting the stack (AWS only).
    fn ask_stack_op(&mut self, op: Action) -> bool {
        match self.stack.confirm_question(&op) {
            Ok(question) => self.status.ask(op, question),
            Err(why) => self.notify(why.level, why.text),
        }
    }

    fn notify(&mut self, level: NoticeLevel, text: String) -> bool {
        self.status.notify(level, text)
    }

    /// The latest counts of a stage, for its Stack row.
    fn live_figures(&self, stage: Stage) -> String {
        match stage {
            Stage::Producer | Stage::Delivery => self.throughput.live_figures(stage),
            Stage::Detector | Stage::Alerts | Stage::Tail => self.scores.live_figures(stage),
        }
    }

    /// The most columns a chart can span: the terminal's width (a zoomed pane is narrower).
    /// Frames carry no more points than that. `None` before the first resize: then the
    /// whole series goes, for a frame drawn at any size.
    fn chart_columns(&self) -> Option<usize> {
        (self.size.0 > 0).then_some(self.size.0 as usize)
    }

    pub fn view(&self) -> DashboardView {
        let query_focused = self.focus == PaneId::Query;
        DashboardView {
            title: format!(
                "iotaa · {} · {}",
                self.backend_name,
                self.data_dir.display()
            ),
            focus: self.focus,
            zoomed: self.zoomed,
            stack: self.stack.view(|stage| self.live_figures(stage)),
            throughput: self
                .throughput
                .view(self.stack.delivery_note(), self.chart_columns()),
            scores: self.scores.view(
                self.chart_columns(),
                (self.size.1 > 0).then_some(self.size.1 as usize),
            ),
            query: self.query.view(),
            status: self.status.view(
                &self.keymap,
                self.zoomed,
                query_focused.then(|| self.query.editing()),
                self.focus == PaneId::Scores,
            ),
            help: self
                .help_open
                .then(|| help::view(&self.keymap, &self.source, &self.log_file)),
        }
    }
}
