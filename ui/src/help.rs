use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Widget, Wrap};

use crate::theme;
use crate::view::HelpView;

/// Centered overlay listing every bound key, grouped by section. Generated from the keymap in
/// force, so it shows the user's own bindings.
pub struct HelpOverlay<'a>(pub &'a HelpView);

impl Widget for HelpOverlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let help = self.0;
        let keys_width = help
            .sections
            .iter()
            .flat_map(|s| &s.rows)
            .map(|r| r.keys.chars().count())
            .max()
            .unwrap_or(0)
            .min(20);
        let mut lines: Vec<Line> = Vec::new();
        for section in &help.sections {
            if !lines.is_empty() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(section.title.clone(), theme::key()));
            for row in &section.rows {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<keys_width$}  ", row.keys), theme::key()),
                    Span::raw(row.description.clone()),
                    Span::styled(format!("  ({})", row.action), theme::muted()),
                ]));
            }
        }
        if !help.footer.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::styled(help.footer.clone(), theme::muted()));
        }
        let height = (lines.len() as u16 + 2).min(area.height);
        let width = area.width.saturating_sub(4).min(90);
        let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
        Clear.render(popup, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(
                Block::bordered()
                    .border_type(BorderType::Double)
                    .border_style(ratatui::style::Style::new().fg(theme::ACCENT))
                    .title(" Help · ? or Esc closes ")
                    .title_alignment(ratatui::layout::Alignment::Center),
            )
            .render(popup, buf);
    }
}
