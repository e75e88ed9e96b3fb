use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, List, ListItem, ListState, Paragraph, StatefulWidget, Widget, Wrap};

use super::title;
use crate::theme;
use crate::view::{EditorView, PaneId, PickerView, QueryView, ResultView, RunState};

/// How NULL is shown in results: never confused with the string 'NULL'.
pub const NULL_MARK: &str = "∅";
/// Widest a result column gets before its values are cut.
const MAX_COLUMN_WIDTH: usize = 40;
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// SQL editor, run state, results table, and the examples/history picker.
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
        let v = self.view;
        let extra = if v.editor.editing { "editing" } else { "" };
        let block = theme::pane_block(title(PaneId::Query, extra), self.focused);
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height == 0 || inner.width == 0 {
            return;
        }
        if let Some(why) = &v.unavailable {
            Paragraph::new(Line::styled(why.clone(), theme::muted()))
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        }
        let editor_height =
            (v.editor.lines.len().max(1) as u16).clamp(1, (inner.height * 2 / 5).max(1));
        let [editor_area, state_area, results_area] = Layout::vertical([
            Constraint::Length(editor_height),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(inner);
        render_editor(&v.editor, editor_area, buf);
        render_state(&v.run, state_area, buf);
        if let RunState::Failed { message } = &v.run {
            // The whole message, wrapped: it says what and where.
            Paragraph::new(Line::styled(message.clone(), Style::new().fg(theme::ALERT)))
                .wrap(Wrap { trim: false })
                .render(results_area, buf);
        } else if let Some(result) = &v.result {
            render_result(result, results_area, buf);
        }
        if let Some(picker) = &v.picker {
            render_picker(picker, inner, buf);
        }
    }
}

fn render_editor(e: &EditorView, area: Rect, buf: &mut Buffer) {
    let (h, w) = (area.height as usize, area.width as usize);
    let (row, col) = e.cursor;
    // Keep the cursor in view while editing.
    let first_row = if e.editing {
        row.saturating_sub(h.saturating_sub(1))
    } else {
        0
    };
    let first_col = if e.editing {
        col.saturating_sub(w.saturating_sub(1))
    } else {
        0
    };
    let style = if e.editing {
        Style::new()
    } else {
        Style::new().fg(theme::ACCENT)
    };
    for (i, line) in e.lines.iter().skip(first_row).take(h).enumerate() {
        let text: String = line.chars().skip(first_col).take(w).collect();
        buf.set_stringn(area.x, area.y + i as u16, &text, w, style);
    }
    if e.editing && row >= first_row && col >= first_col {
        let (x, y) = (
            area.x + (col - first_col) as u16,
            area.y + (row - first_row) as u16,
        );
        if x < area.right() && y < area.bottom() {
            let cell = &mut buf[(x, y)];
            if cell.symbol().is_empty() {
                cell.set_symbol(" ");
            }
            cell.set_style(Style::new().add_modifier(Modifier::REVERSED));
        }
    }
}

fn render_state(run: &RunState, area: Rect, buf: &mut Buffer) {
    let line = match run {
        RunState::Idle => Line::styled(
            "enter edit · ctrl-r/f5 run · e examples · h history",
            theme::muted(),
        ),
        RunState::Running { elapsed, tick } => Line::from(vec![
            Span::styled(
                format!("{} running {elapsed}", SPINNER[tick % SPINNER.len()]),
                Style::new().fg(theme::WARN),
            ),
            Span::styled(" · ctrl-c cancels", theme::muted()),
        ]),
        RunState::Done { summary } => Line::styled(summary.clone(), Style::new().fg(theme::GOOD)),
        RunState::Failed { .. } => Line::styled(
            "query failed · enter edits · ctrl-r/f5 runs again",
            Style::new().fg(theme::ALERT).add_modifier(Modifier::BOLD),
        ),
        RunState::Cancelled { detail } if detail.is_empty() => {
            Line::styled("cancelled", Style::new().fg(theme::WARN))
        }
        RunState::Cancelled { detail } => {
            Line::styled(format!("cancelled: {detail}"), Style::new().fg(theme::WARN))
        }
    };
    line.render(area, buf);
}

fn cell_text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or(NULL_MARK)
}

fn render_result(r: &ResultView, area: Rect, buf: &mut Buffer) {
    if area.height < 3 {
        return;
    }
    let footer_height = if r.note.is_some() { 2 } else { 1 };
    let [table_area, footer_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(footer_height)]).areas(area);
    let body_rows = table_area.height.saturating_sub(2) as usize;
    let rows = r.rows.iter().take(body_rows);
    // Column widths from what is visible; columns that do not fit are left for scrolling.
    let mut x = table_area.x;
    let mut shown_cols = 0;
    for (c, (name, data_type)) in r.columns.iter().enumerate().skip(r.col_offset) {
        let width = r
            .rows
            .iter()
            .take(body_rows)
            .map(|row| row.get(c).map_or(0, |v| cell_text(v).chars().count()))
            .chain([name.chars().count(), data_type.chars().count()])
            .max()
            .unwrap_or(1)
            .min(MAX_COLUMN_WIDTH) as u16;
        if x + width > table_area.right() && shown_cols > 0 {
            break;
        }
        let width = width.min(table_area.right().saturating_sub(x));
        buf.set_stringn(
            x,
            table_area.y,
            name,
            width as usize,
            Style::new().add_modifier(Modifier::BOLD),
        );
        buf.set_stringn(
            x,
            table_area.y + 1,
            data_type,
            width as usize,
            theme::muted(),
        );
        for (i, row) in rows.clone().enumerate() {
            let value = row.get(c).unwrap_or(&None);
            let style = if value.is_none() {
                theme::muted().add_modifier(Modifier::ITALIC)
            } else {
                Style::new()
            };
            buf.set_stringn(
                x,
                table_area.y + 2 + i as u16,
                cell_text(value),
                width as usize,
                style,
            );
        }
        shown_cols += 1;
        x = x.saturating_add(width + 2);
        if x >= table_area.right() {
            break;
        }
    }
    let last_row = r.row_offset + body_rows.min(r.rows.len());
    let position = if r.total_rows == 0 {
        "no rows".to_string()
    } else {
        format!(
            "rows {}–{} of {} · columns {}–{} of {}",
            r.row_offset + 1,
            last_row,
            r.total_rows,
            r.col_offset + 1,
            r.col_offset + shown_cols,
            r.columns.len()
        )
    };
    let mut lines = vec![Line::styled(
        format!("{position} · {NULL_MARK} = NULL · ↑↓ ←→ scroll · x export CSV"),
        theme::muted(),
    )];
    if let Some(note) = &r.note {
        lines.push(Line::styled(note.clone(), Style::new().fg(theme::WARN)));
    }
    Paragraph::new(lines).render(footer_area, buf);
}

fn render_picker(p: &PickerView, area: Rect, buf: &mut Buffer) {
    Clear.render(area, buf);
    let block = ratatui::widgets::Block::bordered()
        .border_style(Style::new().fg(theme::ACCENT))
        .title(format!(" {} · enter picks · esc closes ", p.title));
    let name_width = p
        .items
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let items: Vec<ListItem> = p
        .items
        .iter()
        .map(|(name, description)| {
            ListItem::new(Line::from(vec![
                Span::styled(
                    format!("{name:<name_width$}"),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::styled(format!("  {description}"), theme::muted()),
            ]))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(p.selected));
    StatefulWidget::render(
        List::new(items)
            .block(block)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("› "),
        area,
        buf,
        &mut state,
    );
}
