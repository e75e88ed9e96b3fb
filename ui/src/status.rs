use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::theme;
use crate::view::StatusView;

/// The bottom line: the current notice (if any), then as many key hints as fit.
pub struct StatusLine<'a>(pub &'a StatusView);

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let mut spans: Vec<Span> = Vec::new();
        let mut used = 0usize;
        let width = area.width as usize;
        if let Some(n) = &self.0.notice {
            let text = format!("{} ", n.text);
            used += text.chars().count();
            spans.push(Span::styled(text, theme::notice(n.level)));
        }
        for (keys, label) in &self.0.hints {
            let needed = keys.chars().count() + label.chars().count() + 3;
            if used + needed > width {
                break;
            }
            used += needed;
            spans.push(Span::styled(format!(" {keys}"), theme::key()));
            spans.push(Span::styled(format!(" {label} "), theme::muted()));
        }
        Line::from(spans).render(area, buf);
    }
}
