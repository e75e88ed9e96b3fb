use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::title;
use crate::theme;
use crate::view::{PaneId, QueryView};

/// SQL editor, run state and results.
pub struct QueryPane<'a> {
    view: &'a QueryView,
    focused: bool,
}

impl<'a> QueryPane<'a> {
    pub fn new(view: &'a QueryView, focused: bool) -> Self {
        Self { view, focused }
    }
}

impl Widget for QueryPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let block = theme::pane_block(title(PaneId::Query, ""), self.focused);
        let inner = block.inner(area);
        block.render(area, buf);
        let [sql_area, state_area] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(2)]).areas(inner);
        let sql: Vec<Line> = self
            .view
            .sql
            .lines()
            .map(|l| Line::from(l.to_string()))
            .collect();
        Paragraph::new(sql).render(sql_area, buf);
        Paragraph::new(Line::styled(self.view.state.clone(), theme::muted()))
            .wrap(Wrap { trim: true })
            .render(state_area, buf);
    }
}
