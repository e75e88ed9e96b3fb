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

/// `HH:MM:SS` (UTC) of a time in ms since the Unix epoch: the charts' time labels.
pub(crate) fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_is_utc_hours_minutes_seconds() {
        // 2026-11-30 05:00:01.123 UTC
        assert_eq!(super::clock(1_796_014_801_123), "05:00:01");
        assert_eq!(super::clock(0), "00:00:00");
        assert_eq!(super::clock(-1), "23:59:59");
    }
}
