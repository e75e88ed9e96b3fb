use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Row, Table, Widget};

use super::{render_waiting, title};
use crate::theme;
use crate::view::{PaneId, ScoresView};

/// ANOMALY_SCORE over time with the threshold, warm-up and lag state, recent alerts.
pub struct ScoresPane<'a> {
    view: &'a ScoresView,
    focused: bool,
}

impl<'a> ScoresPane<'a> {
    pub fn new(view: &'a ScoresView, focused: bool) -> Self {
        Self { view, focused }
    }
}

impl Widget for ScoresPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let Some(s) = &self.view.stats else {
            let block = theme::pane_block(title(PaneId::Scores, ""), self.focused);
            let inner = block.inner(area);
            block.render(area, buf);
            render_waiting(&self.view.waiting_for, inner, buf);
            return;
        };
        let block = theme::pane_block(
            title(PaneId::Scores, &format!("threshold {}", s.threshold)),
            self.focused,
        );
        let inner = block.inner(area);
        block.render(area, buf);

        let mut state = Vec::new();
        match s.warming_up {
            Some((seen, needed)) => state.push(Span::styled(
                format!("warming up: {seen}/{needed} readings, scores are 0 until then"),
                Style::new().fg(theme::WARN),
            )),
            None => {
                let latest = s.latest.map_or("–".into(), |l| format!("{l:.2}"));
                state.push(Span::styled("latest ", theme::muted()));
                state.push(Span::raw(latest));
            }
        }
        let lag = match s.lag_secs {
            // Under 0.05 s reads as 0.0: caught up.
            Some(secs) => (secs >= 0.05).then(|| format!("{secs:.1} s")),
            None => (s.lag_records > 0).then(|| s.lag_records.to_string()),
        };
        if let Some(lag) = lag {
            state.push(Span::styled(
                format!("  detector {lag} behind"),
                Style::new().fg(theme::WARN),
            ));
        }
        let alerts_height = if s.alerts.is_empty() {
            1
        } else {
            (s.alerts.len() as u16 + 1).min(inner.height / 2)
        };
        let [state_area, chart_area, alerts_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(alerts_height),
        ])
        .areas(inner);
        Line::from(state).render(state_area, buf);

        // One point per column the chart can show; the newest at the right edge.
        let width = chart_area.width.saturating_sub(4).max(1) as usize * 2;
        let shown = &s.scores[s.scores.len().saturating_sub(width)..];
        let points: Vec<(f64, f64)> = shown
            .iter()
            .enumerate()
            .map(|(i, &y)| (i as f64, y))
            .collect();
        let x_max = (width.max(2) - 1) as f64;
        let y_max = shown
            .iter()
            .copied()
            .fold(s.threshold * 1.25, f64::max)
            .ceil();
        let threshold_line = [(0.0, s.threshold), (x_max, s.threshold)];
        let datasets = vec![
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme::ALERT))
                .data(&threshold_line),
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme::ACCENT))
                .data(&points),
        ];
        Chart::new(datasets)
            .x_axis(Axis::default().bounds([0.0, x_max]))
            .y_axis(
                Axis::default()
                    .bounds([0.0, y_max])
                    .labels(["0".to_string(), format!("{y_max}")])
                    .style(theme::muted()),
            )
            .render(chart_area, buf);

        if s.alerts.is_empty() {
            Line::styled("no alerts yet", theme::muted()).render(alerts_area, buf);
            return;
        }
        let rows = s.alerts.iter().map(|a| {
            Row::new(vec![
                Cell::from(a.time.clone()),
                Cell::from(a.device.clone()),
                Cell::from(a.value.to_string()),
                Cell::from(format!("{:.2}", a.score))
                    .style(Style::new().fg(theme::ALERT).add_modifier(Modifier::BOLD)),
                Cell::from(a.explanation.clone()),
            ])
        });
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Fill(1),
            ],
        )
        .header(
            Row::new(vec!["time", "device", "value", "score", "explanation"]).style(theme::muted()),
        )
        .render(alerts_area, buf);
    }
}
