//! The whole screen: top bar, panes (grid, single or zoomed), status line, help overlay.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::help::HelpOverlay;
use crate::panes::{QueryPane, ScoresPane, StackPane, ThroughputPane};
use crate::status::StatusLine;
use crate::theme;
use crate::view::{DashboardView, PaneId};

/// Below this size the dashboard shows only a "terminal too small" message.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

/// Below this size the 2×2 grid would be unreadable: only the focused pane is shown, with a
/// tab bar naming the others.
const GRID_MIN_WIDTH: u16 = 80;
const GRID_MIN_HEIGHT: u16 = 20;

/// Renders a [`DashboardView`] over the whole area.
pub struct Dashboard<'a>(pub &'a DashboardView);

/// Where each visible pane goes for a screen of `area`, given focus and zoom. Panes that are
/// not visible (compact or zoomed layouts) are absent. Empty when the screen is too small.
pub fn pane_areas(area: Rect, view: &DashboardView) -> Vec<(PaneId, Rect)> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return Vec::new();
    }
    let [_, body, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let compact = area.width < GRID_MIN_WIDTH || area.height < GRID_MIN_HEIGHT;
    if view.zoomed || compact {
        return vec![(view.focus, body)];
    }
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
    let [stack, throughput] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [scores, query] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    vec![
        (PaneId::Stack, stack),
        (PaneId::Throughput, throughput),
        (PaneId::Scores, scores),
        (PaneId::Query, query),
    ]
}

impl Widget for Dashboard<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let view = self.0;
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            render_too_small(area, buf);
            return;
        }
        let [top, _, bottom] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(area);
        render_top_bar(view, top, buf);
        for (pane, rect) in pane_areas(area, view) {
            let focused = pane == view.focus;
            match pane {
                PaneId::Stack => StackPane::new(&view.stack, focused).render(rect, buf),
                PaneId::Throughput => {
                    ThroughputPane::new(&view.throughput, focused).render(rect, buf)
                }
                PaneId::Scores => ScoresPane::new(&view.scores, focused)
                    .zoomed(view.zoomed)
                    .render(rect, buf),
                PaneId::Query => QueryPane::new(&view.query, focused).render(rect, buf),
            }
        }
        StatusLine(&view.status).render(bottom, buf);
        if let Some(help) = &view.help {
            HelpOverlay(help).render(area, buf);
        }
    }
}

/// Title on the left, pane tabs on the right; the focused tab is highlighted. When the width
/// is short, unfocused tabs shrink to their numbers.
fn render_top_bar(view: &DashboardView, area: Rect, buf: &mut Buffer) {
    let tabs = |short: bool| -> Vec<Span<'static>> {
        let mut tabs = Vec::new();
        for pane in PaneId::ALL {
            let focused = pane == view.focus;
            let label = if short && !focused {
                format!(" {} ", pane.number())
            } else {
                format!(" {} {} ", pane.number(), pane.title())
            };
            let style = if focused {
                Style::new()
                    .fg(theme::ACCENT)
                    .add_modifier(Modifier::BOLD | Modifier::REVERSED)
            } else {
                theme::muted()
            };
            tabs.push(Span::styled(label, style));
        }
        if view.zoomed {
            tabs.push(Span::styled(" zoom", theme::muted()));
        }
        tabs
    };
    let width = |spans: &[Span]| spans.iter().map(|s| s.width()).sum::<usize>() as u16;
    let mut spans = tabs(false);
    if width(&spans) + 12 > area.width {
        spans = tabs(true);
    }
    let tabs_width = width(&spans).min(area.width);
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(tabs_width)]).areas(area);
    Line::from(Span::styled(
        view.title.clone(),
        Style::new().add_modifier(Modifier::BOLD),
    ))
    .render(left, buf);
    Line::from(spans).render(right, buf);
}

fn render_too_small(area: Rect, buf: &mut Buffer) {
    let text = format!(
        "Terminal too small: {}×{}. iotaa needs at least {MIN_WIDTH}×{MIN_HEIGHT}. Press q to quit.",
        area.width, area.height
    );
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .style(Style::new().fg(theme::WARN))
        .render(area, buf);
}
