//! The one `Action` enum. Keys, workers and signals all become actions sent on the app's
//! channel; `App::update` is the only place they change state.
//!
//! Bindable actions have `snake_case` names: those are the names used in `[keys]` of
//! `config.toml`. Internal actions (resize, tick) carry data and cannot be bound.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    FocusStack,
    FocusThroughput,
    FocusScores,
    FocusQuery,
    Zoom,
    FireAnomaly,
    TogglePause,
    RateUp,
    RateDown,
    EditQuery,
    RunQuery,
    CancelQuery,
    LeaveEditor,
    Examples,
    History,
    ExportCsv,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    ScrollLeft,
    ScrollRight,
    NextDevice,
    PrevDevice,
    /// The alerts read back from alerts.log at start (oldest first) and how many of its
    /// lines could not be read.
    #[serde(skip)]
    AlertHistory {
        alerts: Vec<crate::records::Alert>,
        skipped: usize,
    },
    /// A key typed into the SQL editor.
    #[serde(skip)]
    EditorInput(crossterm::event::KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    #[serde(skip)]
    Paste(String),
    /// A query finished (or failed, or was cancelled).
    #[serde(skip)]
    QueryFinished {
        id: u64,
        outcome: crate::query::QueryOutcome,
    },
    /// The terminal was resized to (columns, rows).
    #[serde(skip)]
    Resize(u16, u16),
    /// The periodic tick: time-based state (elapsed times, rates) may change.
    #[serde(skip)]
    Tick,
    /// Something a pipeline stage reported.
    #[serde(skip)]
    Pipeline(crate::pipeline::Event),
    /// The backend's stack as last described (or why it could not be), for the Stack pane.
    #[serde(skip)]
    Stack(Result<crate::stack::StackSnapshot, String>),
    /// Deploy (create or update) the stack, after a confirmation.
    DeployStack,
    /// Delete the stack, after a confirmation.
    DeleteStack,
    /// The answer to a confirmation: `y` confirms, any other key cancels.
    #[serde(skip)]
    Confirm(bool),
    /// A line from a deploy or delete started in the dashboard (`true`: an error).
    #[serde(skip)]
    StackOpLine(String, bool),
}

/// Where the dashboard's parts (pipeline reports, the stack watcher, query jobs, stack
/// operations) send what happened; it returns `false` once nobody listens (the App has quit).
pub type Sender = Arc<dyn Fn(Action) -> bool + Send + Sync>;

/// Where a binding applies. Pane bindings are looked up first while that pane has focus, so
/// `ctrl-c` can cancel a query in the Query pane and quit elsewhere. The Query pane's scroll
/// keys also scroll the Scores pane's alert history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    QueryPane,
    ScoresPane,
}

/// Every bindable action with its scope and the sentence the help overlay shows.
pub const BINDABLE: &[(Action, Scope, &str)] = &[
    (
        Action::Quit,
        Scope::Global,
        "Quit, flushing what is buffered",
    ),
    (Action::Help, Scope::Global, "Show or hide this help"),
    (Action::FocusNext, Scope::Global, "Focus the next pane"),
    (Action::FocusPrev, Scope::Global, "Focus the previous pane"),
    (Action::FocusStack, Scope::Global, "Focus the Stack pane"),
    (
        Action::FocusThroughput,
        Scope::Global,
        "Focus the Throughput pane",
    ),
    (Action::FocusScores, Scope::Global, "Focus the Scores pane"),
    (Action::FocusQuery, Scope::Global, "Focus the Query pane"),
    (
        Action::Zoom,
        Scope::Global,
        "Zoom the focused pane / back to all four",
    ),
    (
        Action::FireAnomaly,
        Scope::Global,
        "Send one anomalous reading (a spike)",
    ),
    (
        Action::TogglePause,
        Scope::Global,
        "Pause or resume the producer",
    ),
    (Action::RateUp, Scope::Global, "Double the producer's rate"),
    (Action::RateDown, Scope::Global, "Halve the producer's rate"),
    (
        Action::DeployStack,
        Scope::Global,
        "AWS: deploy (create or update) the stack, after y to confirm",
    ),
    (
        Action::DeleteStack,
        Scope::Global,
        "AWS: delete the stack, after y to confirm",
    ),
    (Action::EditQuery, Scope::QueryPane, "Edit the SQL"),
    (Action::RunQuery, Scope::QueryPane, "Run the SQL"),
    (
        Action::CancelQuery,
        Scope::QueryPane,
        "Cancel the running query",
    ),
    (
        Action::LeaveEditor,
        Scope::QueryPane,
        "Leave the editor / close a list",
    ),
    (
        Action::Examples,
        Scope::QueryPane,
        "Pick an example query from queries/",
    ),
    (
        Action::History,
        Scope::QueryPane,
        "Pick a query from the history",
    ),
    (
        Action::ExportCsv,
        Scope::QueryPane,
        "Export the result to CSV",
    ),
    (
        Action::ScrollUp,
        Scope::QueryPane,
        "Scroll the result up (or move in a list)",
    ),
    (
        Action::ScrollDown,
        Scope::QueryPane,
        "Scroll the result down (or move in a list)",
    ),
    (
        Action::PageUp,
        Scope::QueryPane,
        "Scroll the result a page up",
    ),
    (
        Action::PageDown,
        Scope::QueryPane,
        "Scroll the result a page down",
    ),
    (
        Action::ScrollLeft,
        Scope::QueryPane,
        "Scroll the result's columns left",
    ),
    (
        Action::ScrollRight,
        Scope::QueryPane,
        "Scroll the result's columns right",
    ),
    (
        Action::NextDevice,
        Scope::ScoresPane,
        "Chart the next device (all devices, then each one seen)",
    ),
    (
        Action::PrevDevice,
        Scope::ScoresPane,
        "Chart the previous device",
    ),
];

impl Action {
    /// The name used in `[keys]`, e.g. `run_query`. `None` for internal actions.
    pub fn name(&self) -> Option<&'static str> {
        Some(match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::FocusStack => "focus_stack",
            Action::FocusThroughput => "focus_throughput",
            Action::FocusScores => "focus_scores",
            Action::FocusQuery => "focus_query",
            Action::Zoom => "zoom",
            Action::FireAnomaly => "fire_anomaly",
            Action::DeployStack => "deploy_stack",
            Action::DeleteStack => "delete_stack",
            Action::TogglePause => "toggle_pause",
            Action::RateUp => "rate_up",
            Action::RateDown => "rate_down",
            Action::EditQuery => "edit_query",
            Action::RunQuery => "run_query",
            Action::CancelQuery => "cancel_query",
            Action::LeaveEditor => "leave_editor",
            Action::Examples => "examples",
            Action::History => "history",
            Action::ExportCsv => "export_csv",
            Action::ScrollUp => "scroll_up",
            Action::ScrollDown => "scroll_down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::ScrollLeft => "scroll_left",
            Action::ScrollRight => "scroll_right",
            Action::NextDevice => "next_device",
            Action::PrevDevice => "prev_device",
            Action::Resize(..)
            | Action::AlertHistory { .. }
            | Action::Tick
            | Action::Pipeline(_)
            | Action::Stack(_)
            | Action::Confirm(_)
            | Action::StackOpLine(..)
            | Action::EditorInput(_)
            | Action::Paste(_)
            | Action::QueryFinished { .. } => return None,
        })
    }

    pub fn scope(&self) -> Scope {
        BINDABLE
            .iter()
            .find(|(a, _, _)| a == self)
            .map_or(Scope::Global, |(_, s, _)| *s)
    }

    pub fn description(&self) -> &'static str {
        BINDABLE
            .iter()
            .find(|(a, _, _)| a == self)
            .map_or("", |(_, _, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde name, `name()` and the BINDABLE table agree for every bindable action.
    #[test]
    fn names_agree_with_serde() {
        for (action, _, description) in BINDABLE {
            let name = action.name().expect("bindable actions have names");
            let serde_name = serde_json::to_value(action).unwrap();
            assert_eq!(serde_name, serde_json::Value::String(name.into()));
            let back: Action = serde_json::from_value(serde_name).unwrap();
            assert_eq!(&back, action);
            assert!(!description.is_empty());
        }
    }

    #[test]
    fn internal_actions_cannot_be_named() {
        assert!(serde_json::from_str::<Action>("\"tick\"").is_err());
        assert!(serde_json::from_str::<Action>("\"resize\"").is_err());
        assert_eq!(Action::Tick.name(), None);
    }
}
