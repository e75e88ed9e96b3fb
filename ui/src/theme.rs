//! Colours and border styles. Focus is shown by a thick border *and* colour, so it stays
//! visible on monochrome terminals and in text snapshots.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};

use crate::view::{Health, NoticeLevel};

pub const ACCENT: Color = Color::Cyan;
pub const MUTED: Color = Color::DarkGray;
pub const ALERT: Color = Color::Red;
pub const WARN: Color = Color::Yellow;
pub const GOOD: Color = Color::Green;

pub fn pane_block(title: String, focused: bool) -> Block<'static> {
    let (border_type, border_style, title_style) = if focused {
        (
            BorderType::Thick,
            Style::new().fg(ACCENT),
            Style::new().fg(ACCENT).add_modifier(Modifier::BOLD),
        )
    } else {
        (BorderType::Plain, Style::new().fg(MUTED), Style::new())
    };
    Block::new()
        .borders(Borders::ALL)
        .border_type(border_type)
        .border_style(border_style)
        .title(ratatui::text::Span::styled(title, title_style))
}

pub fn muted() -> Style {
    Style::new().fg(MUTED)
}

pub fn key() -> Style {
    Style::new().fg(ACCENT).add_modifier(Modifier::BOLD)
}

pub fn health(h: Health) -> Style {
    match h {
        Health::Ok => Style::new().fg(GOOD),
        Health::InProgress => Style::new().fg(WARN),
        Health::Stopped => Style::new().fg(MUTED),
        Health::Failed => Style::new().fg(ALERT).add_modifier(Modifier::BOLD),
        Health::Missing => Style::new().fg(WARN),
    }
}

pub fn notice(level: NoticeLevel) -> Style {
    match level {
        NoticeLevel::Info => Style::new().fg(ACCENT),
        NoticeLevel::Warning => Style::new().fg(WARN),
        NoticeLevel::Error => Style::new().fg(ALERT).add_modifier(Modifier::BOLD),
    }
}
