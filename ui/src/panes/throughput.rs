use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget};

use super::{clock, render_waiting, title};
use crate::theme;
use crate::view::{PaneId, ThroughputView};

/// Records/s and bytes/s sent, failures and retries, delivery lag, and a chart of the last
/// minutes.
pub struct ThroughputPane<'a> {
    view: &'a ThroughputView,
    focused: bool,
}

impl<'a> ThroughputPane<'a> {
    pub fn new(view: &'a ThroughputView, focused: bool) -> Self {
        Self { view, focused }
    }
}

/// `1234` → `1.2 k`, for figures that must fit a narrow pane.
pub(crate) fn human(n: f64) -> String {
    let abs = n.abs();
    if abs >= 1e9 {
        format!("{:.1} G", n / 1e9)
    } else if abs >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else if abs >= 1e4 {
        format!("{:.1} k", n / 1e3)
    } else if abs >= 100.0 || n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

impl Widget for ThroughputPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let Some(s) = &self.view.stats else {
            let block = theme::pane_block(title(PaneId::Throughput, ""), self.focused);
            let inner = block.inner(area);
            block.render(area, buf);
            render_waiting(&self.view.waiting_for, inner, buf);
            return;
        };
        let state = if s.paused { "paused" } else { "" };
        let block = theme::pane_block(title(PaneId::Throughput, state), self.focused);
        let inner = block.inner(area);
        block.render(area, buf);

        let lag = s
            .delivery_lag_secs
            .map_or("–".to_string(), |l| format!("{l:.1} s"));
        let label = |t: &str| Span::styled(t.to_string(), theme::muted());
        let lines = vec![
            Line::from(vec![
                label("sent "),
                Span::raw(format!("{} rec/s", human(s.records_per_sec))),
                label("  "),
                Span::raw(format!("{}/s", s.bytes_per_sec)),
            ]),
            Line::from(vec![
                label("total "),
                Span::raw(human(s.sent as f64)),
                label("  acked "),
                Span::raw(human(s.acknowledged as f64)),
                label("  failed "),
                Span::styled(
                    human(s.failed as f64),
                    if s.failed > 0 {
                        ratatui::style::Style::new().fg(theme::ALERT)
                    } else {
                        ratatui::style::Style::new()
                    },
                ),
                label("  retries "),
                Span::raw(human(s.retries as f64)),
            ]),
            match &s.delivery_note {
                Some(note) => Line::from(vec![label("delivery "), Span::raw(note.clone())]),
                None => Line::from(vec![
                    label("delivered "),
                    Span::raw(format!("{} objects", human(s.objects_delivered as f64))),
                    label("  lag "),
                    Span::raw(lag),
                ]),
            },
        ];
        let [text_area, chart_area, axis_area] = Layout::vertical([
            Constraint::Length(lines.len() as u16),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        Paragraph::new(lines).render(text_area, buf);
        let width = chart_area.width as usize;
        let data = &s.history[s.history.len().saturating_sub(width)..];
        Sparkline::default()
            .data(data.iter().copied())
            .style(ratatui::style::Style::new().fg(theme::ACCENT))
            .render(chart_area, buf);
        let max = data.iter().copied().max().unwrap_or(0);
        let text = format!("rec/s per {} · max {}", s.bin_label, human(max as f64));
        // The time axis: when the oldest and the newest bin shown closed.
        let times = (s.history_times_ms.len() == s.history.len() && !data.is_empty())
            .then(|| &s.history_times_ms[s.history.len() - data.len()..]);
        match times {
            Some(t) if axis_area.width as usize >= text.chars().count() + 20 => {
                // `06:40:01  rec/s per 1 s · max 7      06:41:30`: the sparkline draws from
                // the left, so the newest bin's time goes under the newest bin.
                let text_width = text.chars().count() as u16;
                let end = (data.len() as u16).clamp(text_width + 20, axis_area.width);
                buf.set_string(axis_area.x, axis_area.y, clock(t[0]), theme::muted());
                buf.set_string(axis_area.x + 10, axis_area.y, text, theme::muted());
                if t.len() > 1 {
                    let last = clock(t[t.len() - 1]);
                    buf.set_string(axis_area.x + end - 8, axis_area.y, last, theme::muted());
                }
            }
            _ => Line::styled(text, theme::muted()).render(axis_area, buf),
        }
    }
}
