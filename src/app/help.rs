//! The help overlay, generated from the keymap in force.

use std::path::Path;

use ui::{HelpRow, HelpSection, HelpView};

use crate::action::{BINDABLE, Scope};
use crate::config::Source;
use crate::keymap::Keymap;

/// Every bindable action with its keys, by scope; the footer says where to rebind them.
pub fn view(keymap: &Keymap, source: &Source, log_file: &Path) -> HelpView {
    let section = |title: &str, scope: Scope| HelpSection {
        title: title.into(),
        rows: BINDABLE
            .iter()
            .filter(|(_, s, _)| *s == scope)
            .map(|(action, _, description)| HelpRow {
                keys: match keymap.describe(action) {
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
            section(
                "In the Query pane (the scroll keys also scroll the Scores pane's alerts)",
                Scope::QueryPane,
            ),
            section("In the Scores pane", Scope::ScoresPane),
        ],
        footer: format!(
            "Rebind keys by action name in [keys] of {}. Log: {}",
            match source {
                Source::File(p) => p.display().to_string(),
                Source::Defaults => "config.toml".into(),
            },
            log_file.display()
        ),
    }
}
