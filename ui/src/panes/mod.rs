//! One widget per pane, each over its own view struct.

mod query;
mod scores;
mod stack;
mod throughput;

pub use query::QueryPane;
pub use scores::ScoresPane;
pub use stack::StackPane;
pub use throughput::ThroughputPane;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::theme;

/// The pane's title as shown in its border: `1 Stack`, with extra words after it.
fn title(pane: crate::PaneId, extra: &str) -> String {
    if extra.is_empty() {
        format!(" {} {} ", pane.number(), pane.title())
    } else {
        format!(" {} {} · {} ", pane.number(), pane.title(), extra)
    }
}

/// What a pane shows before its data exists: what it is waiting for, never a blank box.
fn render_waiting(text: &str, area: Rect, buf: &mut Buffer) {
    Paragraph::new(Line::styled(text.to_string(), theme::muted()))
        .wrap(Wrap { trim: true })
        .render(area, buf);
}
