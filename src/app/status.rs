//! The status line: the latest notice (or the question a stack operation waits on) and the
//! most useful keys as bound.

use ui::{Notice, NoticeLevel, StatusView};

use crate::action::Action;
use crate::keymap::Keymap;
use crate::pipeline::{Event, Level, StageState};

/// The status line's state.
#[derive(Debug, Default)]
pub struct StatusLine {
    notice: Option<Notice>,
    /// A stack operation waiting for `y`.
    confirming: Option<Action>,
}

impl StatusLine {
    /// Shows `text`. Returns whether the line changed.
    pub fn notify(&mut self, level: NoticeLevel, text: String) -> bool {
        let notice = Some(Notice { level, text });
        let changed = self.notice != notice;
        self.notice = notice;
        changed
    }

    fn set(&mut self, level: NoticeLevel, text: String) {
        self.notice = Some(Notice { level, text });
    }

    /// Asks `question` before `op`; the next key answers it.
    pub fn ask(&mut self, op: Action, question: String) -> bool {
        self.confirming = Some(op);
        self.notify(NoticeLevel::Warning, question)
    }

    /// Whether a question waits for its answer.
    pub fn confirming(&self) -> bool {
        self.confirming.is_some()
    }

    /// The operation the question was about, once answered.
    pub fn take_confirming(&mut self) -> Option<Action> {
        self.confirming.take()
    }

    /// Says what went wrong, resumed or was sent. `was` is what the event's stage reported
    /// before, for stage reports. Returns whether the line changed.
    pub fn on_event(&mut self, event: &Event, was: Option<StageState>) -> bool {
        let Some((level, text)) = event.notice(was) else {
            return false;
        };
        // Stages' troubles go to the log too (alerts have alerts.log).
        if matches!(event, Event::Stage { .. } | Event::Problem { .. }) {
            match level {
                Level::Error => tracing::error!("{text}"),
                Level::Warning => tracing::warn!("{text}"),
                Level::Info => tracing::info!("{text}"),
            }
        }
        let level = match level {
            Level::Error => NoticeLevel::Error,
            Level::Warning => NoticeLevel::Warning,
            Level::Info => NoticeLevel::Info,
        };
        self.set(level, text);
        true
    }

    /// The line: the notice and the most useful keys, as bound (the status line never shows
    /// a key that does not work). `query_editing`: the focused Query pane's editor has the
    /// keys (`None` when another pane has the focus); `scores_focused`: the Scores pane has it.
    pub fn view(
        &self,
        keymap: &Keymap,
        zoomed: bool,
        query_editing: Option<bool>,
        scores_focused: bool,
    ) -> StatusView {
        let mut hints = Vec::new();
        let mut hint = |action: Action, label: &str| {
            if let Some(key) = keymap.keys_for(&action).first() {
                hints.push((key.to_string(), label.to_string()));
            }
        };
        hint(Action::Quit, "quit");
        hint(Action::Help, "help");
        hint(Action::FocusNext, "focus");
        hint(Action::Zoom, if zoomed { "unzoom" } else { "zoom" });
        match query_editing {
            Some(true) => {
                hint(Action::LeaveEditor, "leave editor");
                hint(Action::RunQuery, "run");
            }
            Some(false) => {
                hint(Action::EditQuery, "edit");
                hint(Action::RunQuery, "run");
                hint(Action::Examples, "examples");
                hint(Action::History, "history");
            }
            None => {
                if scores_focused {
                    hint(Action::NextDevice, "device");
                    if zoomed {
                        hint(Action::ScrollDown, "alerts");
                    }
                }
                hint(Action::FireAnomaly, "anomaly");
                hint(Action::TogglePause, "pause");
            }
        }
        StatusView {
            hints,
            notice: self.notice.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Stage;

    fn stage(state: StageState) -> Event {
        Event::Stage {
            stage: Stage::Delivery,
            state,
            detail: "x".into(),
        }
    }

    #[test]
    fn only_a_blocked_stage_that_runs_again_says_it_resumed() {
        let mut s = StatusLine::default();
        assert!(!s.on_event(&stage(StageState::Running), None));
        assert!(!s.on_event(&stage(StageState::Running), Some(StageState::Starting)));
        assert_eq!(s.notice, None);
        assert!(s.on_event(&stage(StageState::Running), Some(StageState::Blocked)));
        assert_eq!(s.notice.unwrap().text, "delivery resumed: x");
    }

    #[test]
    fn a_question_waits_for_one_answer() {
        let mut s = StatusLine::default();
        assert!(s.ask(Action::DeleteStack, "sure?".into()));
        assert!(s.confirming());
        assert_eq!(s.take_confirming(), Some(Action::DeleteStack));
        assert_eq!(s.take_confirming(), None);
        assert!(!s.notify(NoticeLevel::Warning, "sure?".into()), "unchanged");
    }
}
