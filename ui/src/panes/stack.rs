use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget};

use super::{render_waiting, title};
use crate::theme;
use crate::view::{PaneId, ResourceRow, StackView};

/// Resources and their status, recent events, outputs.
pub struct StackPane<'a> {
    view: &'a StackView,
    focused: bool,
}

impl<'a> StackPane<'a> {
    pub fn new(view: &'a StackView, focused: bool) -> Self {
        Self { view, focused }
    }
}

impl Widget for StackPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let v = self.view;
        let block = theme::pane_block(title(PaneId::Stack, &v.backend), self.focused);
        let inner = block.inner(area);
        block.render(area, buf);
        if v.resources.is_empty() {
            render_waiting("Waiting for the stack to report its resources…", inner, buf);
            return;
        }
        let events_height = if v.events.is_empty() {
            0
        } else {
            (v.events.len() as u16 + 1).min(inner.height / 3)
        };
        let outputs_height = if v.outputs.is_empty() {
            0
        } else {
            (v.outputs.len() as u16 + 1).min(inner.height / 4)
        };
        let [table_area, events_area, outputs_area] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(events_height),
            Constraint::Length(outputs_height),
        ])
        .areas(inner);

        // Columns as wide as their content; the detail (often a path) gets the rest and is
        // cut on the left, where a path is least informative.
        let width_of = |f: fn(&ResourceRow) -> usize, header: &str| {
            v.resources
                .iter()
                .map(f)
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0) as u16
        };
        let name_w = width_of(|r| r.name.chars().count(), "resource").min(20);
        // Kinds like `Lambda::Function` or `CloudWatch::Alarm` whole when the pane is wide
        // (zoomed), cut to 12 otherwise.
        let kind_cap = if table_area.width >= 110 { 18 } else { 12 };
        let kind_w = width_of(|r| r.kind.chars().count(), "kind").min(kind_cap);
        let status_w = width_of(|r| r.health.label().len(), "status");
        let detail_w = table_area
            .width
            .saturating_sub(name_w + kind_w + status_w + 3) as usize;
        let rows = v.resources.iter().map(|r| {
            Row::new(vec![
                Cell::from(r.name.clone()),
                Cell::from(r.kind.clone()).style(theme::muted()),
                Cell::from(r.health.label()).style(theme::health(r.health)),
                Cell::from(elide_left(&r.detail, detail_w)),
            ])
        });
        Table::new(
            rows,
            [
                Constraint::Length(name_w),
                Constraint::Length(kind_w),
                Constraint::Length(status_w),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(vec!["resource", "kind", "status", "detail"]).style(theme::muted()))
        .render(table_area, buf);

        if events_height > 0 {
            let skip = v
                .events
                .len()
                .saturating_sub(events_height.saturating_sub(1) as usize);
            let mut lines = vec![Line::styled("recent events", theme::muted())];
            lines.extend(v.events.iter().skip(skip).map(|e| Line::from(e.clone())));
            Paragraph::new(lines).render(events_area, buf);
        }
        if outputs_height > 0 {
            let mut lines = vec![Line::styled("outputs", theme::muted())];
            lines.extend(v.outputs.iter().map(|(k, val)| {
                Line::from(vec![
                    Span::styled(format!("{k}: "), theme::muted()),
                    Span::raw(val.clone()),
                ])
            }));
            Paragraph::new(lines).render(outputs_area, buf);
        }
    }
}

/// `…` and the last `width - 1` characters of `text` when it is longer than `width`.
fn elide_left(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = text.chars().skip(len - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::elide_left;

    #[test]
    fn elides_on_the_left() {
        assert_eq!(elide_left("/work/main/data", 20), "/work/main/data");
        assert_eq!(elide_left("/work/main/data", 8), "…in/data");
        assert_eq!(elide_left("/work", 1), "…");
        assert_eq!(elide_left("/work", 0), "");
    }
}
