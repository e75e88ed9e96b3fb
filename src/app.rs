//! The dashboard's state. `App::update` is the only place it changes; `App::view` turns it
//! into the `ui` crate's plain view structs.

use std::path::PathBuf;

use crossterm::event::KeyEvent;
use ui::{
    DashboardView, Health, HelpRow, HelpSection, HelpView, Notice, NoticeLevel, PaneId, QueryView,
    ResourceRow, ScoresView, StackView, StatusView, ThroughputView,
};

use crate::action::{Action, BINDABLE, Scope};
use crate::config::{Backend, Loaded, Source};
use crate::keymap::{KeyBinding, Keymap};

/// The dashboard's state.
#[derive(Debug)]
pub struct App {
    keymap: Keymap,
    backend: Backend,
    source: Source,
    data_dir: PathBuf,
    log_file: PathBuf,
    example_sql: String,
    focus: PaneId,
    zoomed: bool,
    help_open: bool,
    quitting: bool,
    notice: Option<Notice>,
    size: (u16, u16),
}

impl App {
    pub fn new(loaded: &Loaded, log_file: PathBuf) -> Self {
        let q = &loaded.config.query;
        App {
            keymap: loaded.keymap.clone(),
            backend: loaded.config.backend,
            source: loaded.source.clone(),
            data_dir: loaded.data_dir.clone(),
            log_file,
            example_sql: format!(
                "SELECT deviceid, count(*) AS readings,\n       max(sensorreading) AS max_reading\nFROM {}.{}\nGROUP BY deviceid\nORDER BY deviceid",
                q.database, q.table
            ),
            focus: PaneId::Stack,
            zoomed: false,
            help_open: false,
            quitting: false,
            notice: None,
            size: (0, 0),
        }
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
        let action = self
            .keymap
            .action_for(&key, self.focus == PaneId::Query && !self.help_open);
        if self.help_open {
            // While help is open: the help key or Esc closes it, quit still quits, and
            // nothing else happens behind the overlay.
            return match action {
                Some(Action::Quit) | Some(Action::Help) => action,
                _ if key == KeyBinding::plain(crate::keymap::Key::Esc) => Some(Action::Help),
                _ => None,
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
            Action::FireAnomaly
            | Action::TogglePause
            | Action::RateUp
            | Action::RateDown
            | Action::EditQuery
            | Action::RunQuery
            | Action::CancelQuery
            | Action::LeaveEditor => {
                let stage = match action {
                    Action::EditQuery
                    | Action::RunQuery
                    | Action::CancelQuery
                    | Action::LeaveEditor => "the query runner",
                    _ => "the producer",
                };
                self.notify(
                    NoticeLevel::Warning,
                    format!(
                        "{}: {stage} is not part of this version yet.",
                        action.name().unwrap_or("?")
                    ),
                )
            }
            Action::Resize(w, h) => {
                let changed = self.size != (w, h);
                self.size = (w, h);
                changed
            }
            // Nothing in the shell changes with time: no redraw while idle.
            Action::Tick => false,
        }
    }

    fn set_focus(&mut self, pane: PaneId) -> bool {
        let changed = self.focus != pane;
        self.focus = pane;
        changed
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
            throughput: ThroughputView {
                stats: None,
                waiting_for: "Waiting for the producer: no readings sent yet. The embedded \
                              pipeline is not part of this version yet."
                    .into(),
            },
            scores: ScoresView {
                stats: None,
                waiting_for: "Waiting for the anomaly stream: no scored readings yet. The \
                              detector is not part of this version yet."
                    .into(),
            },
            query: QueryView {
                sql: self.example_sql.clone(),
                state: "Waiting for the lake: no objects delivered yet. The query runner is \
                        not part of this version yet."
                    .into(),
            },
            status: self.status_view(),
            help: self.help_open.then(|| self.help_view()),
        }
    }

    fn stack_view(&self) -> StackView {
        let exists = |p: &PathBuf| {
            if p.exists() {
                Health::Ok
            } else {
                Health::Missing
            }
        };
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
        StackView {
            backend: self.backend.to_string(),
            resources: vec![
                config_row,
                ResourceRow {
                    name: "data dir".into(),
                    kind: "folder".into(),
                    health: exists(&self.data_dir),
                    detail: self.data_dir.display().to_string(),
                },
                ResourceRow {
                    name: "log".into(),
                    kind: "file".into(),
                    health: exists(&self.log_file),
                    detail: self.log_file.display().to_string(),
                },
            ],
            events: Vec::new(),
            outputs: Vec::new(),
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
        if self.focus == PaneId::Query {
            hint(Action::EditQuery, "edit");
            hint(Action::RunQuery, "run");
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
