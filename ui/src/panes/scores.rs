use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Row, Table, Widget};

use super::{clock, render_waiting, title};
use crate::theme;
use crate::view::{PaneId, ScoreStats, ScoresView};

/// ANOMALY_SCORE over time (all devices or one) with the labelled threshold, warm-up and lag
/// state, and the alerts. Zoomed, it adds the window's percentiles, the whole alert history
/// (scrollable) and a table per device.
pub struct ScoresPane<'a> {
    view: &'a ScoresView,
    focused: bool,
    zoomed: bool,
}

impl<'a> ScoresPane<'a> {
    pub fn new(view: &'a ScoresView, focused: bool) -> Self {
        Self {
            view,
            focused,
            zoomed: false,
        }
    }

    /// The pane fills the screen: show the detail (percentiles, history, devices).
    pub fn zoomed(mut self, zoomed: bool) -> Self {
        self.zoomed = zoomed;
        self
    }
}

/// `all devices` or `device cccc (3/5)`.
fn device_label(s: &ScoreStats) -> String {
    match &s.device {
        None => "all devices".into(),
        Some(d) => match s.devices.iter().position(|x| x == d) {
            Some(i) => format!("device {d} ({}/{})", i + 1, s.devices.len()),
            None => format!("device {d}"),
        },
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
            title(
                PaneId::Scores,
                &format!("{} · threshold {}", device_label(s), s.threshold),
            ),
            self.focused,
        );
        let inner = block.inner(area);
        block.render(area, buf);

        // The device strip shows when there is room for it, the percentiles when zoomed.
        let strip = u16::from(self.zoomed || inner.height >= 14);
        let window = u16::from(self.zoomed);
        let lower_height = if self.zoomed {
            // At most 3/5 of the pane; no more than the alerts and the devices need.
            let alerts = if s.alerts_total == 0 && s.alerts.is_empty() {
                1
            } else {
                s.alerts.len() as u16 + 2
            };
            let devices = (s.device_rows.len() as u16 + 1).max(2);
            let needed = if inner.width >= 110 {
                alerts.max(devices)
            } else {
                alerts.saturating_add(devices)
            };
            needed.min(inner.height.saturating_sub(3) * 3 / 5)
        } else if s.alerts.is_empty() {
            1
        } else {
            (s.alerts.len() as u16 + 1).min(inner.height / 2)
        };
        let [state_area, strip_area, window_area, chart_area, lower_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(strip),
            Constraint::Length(window),
            Constraint::Fill(1),
            Constraint::Length(lower_height),
        ])
        .areas(inner);
        render_state(s, state_area, buf);
        render_strip(s, strip_area, buf);
        render_window(s, window_area, buf);
        render_chart(s, chart_area, buf);
        if !self.zoomed {
            render_alerts(s, lower_area, buf, false);
            return;
        }
        if lower_area.width >= 110 {
            let [alerts, devices] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Length(52)])
                    .spacing(2)
                    .areas(lower_area);
            render_alerts(s, alerts, buf, true);
            render_devices(s, devices, buf);
        } else {
            let devices_height = (s.device_rows.len() as u16 + 1)
                .max(2)
                .min(lower_area.height * 2 / 5);
            let [alerts, devices] =
                Layout::vertical([Constraint::Fill(1), Constraint::Length(devices_height)])
                    .areas(lower_area);
            render_alerts(s, alerts, buf, true);
            render_devices(s, devices, buf);
        }
    }
}

fn render_state(s: &ScoreStats, area: Rect, buf: &mut Buffer) {
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
    if let Some((note, warn)) = &s.detector_note {
        let style = if *warn {
            Style::new().fg(theme::WARN)
        } else {
            theme::muted()
        };
        state.push(Span::styled(format!("  {note}"), style));
    }
    Line::from(state).render(area, buf);
}

/// `devices  all  aaaa  bbbb …`, the focused one highlighted; scrolled so that it shows.
fn render_strip(s: &ScoreStats, area: Rect, buf: &mut Buffer) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let names: Vec<&str> = std::iter::once("all")
        .chain(s.devices.iter().map(String::as_str))
        .collect();
    let selected = s
        .device
        .as_ref()
        .and_then(|d| s.devices.iter().position(|x| x == d))
        .map_or(0, |i| i + 1);
    let prefix = "devices ";
    // Each name takes its width plus two spaces; leave room for the `‹`/`›` marks.
    let room = (area.width as usize).saturating_sub(prefix.len() + 2);
    let width = |i: usize| names[i].chars().count() + 2;
    let mut start = 0;
    while start < selected && (start..=selected).map(width).sum::<usize>() > room {
        start += 1;
    }
    let mut spans = vec![Span::styled(prefix, theme::muted())];
    spans.push(Span::styled(
        if start > 0 { "‹" } else { " " },
        theme::muted(),
    ));
    let mut used = 0;
    let mut end = start;
    while end < names.len() && used + width(end) <= room {
        let style = if end == selected {
            Style::new()
                .fg(theme::ACCENT)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new()
        };
        spans.push(Span::styled(format!(" {} ", names[end]), style));
        used += width(end);
        end += 1;
    }
    if end < names.len() {
        spans.push(Span::styled("›", theme::muted()));
    }
    Line::from(spans).render(area, buf);
}

/// `last 4000 readings: p50 0.82 · p99 3.10 · max 7.25 · 2 above 4 (0.05 %)`.
fn render_window(s: &ScoreStats, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let Some(w) = &s.window else {
        Line::styled("no scores in the window yet", theme::muted()).render(area, buf);
        return;
    };
    let share = if w.readings == 0 {
        0.0
    } else {
        100.0 * w.above_threshold as f64 / w.readings as f64
    };
    let label = |t: String| Span::styled(t, theme::muted());
    let above_style = if w.above_threshold > 0 {
        Style::new().fg(theme::ALERT)
    } else {
        Style::new()
    };
    Line::from(vec![
        label(format!("last {} readings: p50 ", w.readings)),
        Span::raw(format!("{:.2}", w.p50)),
        label(" · p99 ".into()),
        Span::raw(format!("{:.2}", w.p99)),
        label(" · max ".into()),
        Span::raw(format!("{:.2}", w.max)),
        label(" · ".into()),
        Span::styled(
            format!("{} above {} ({share:.2} %)", w.above_threshold, s.threshold),
            above_style,
        ),
    ])
    .render(area, buf);
}

fn render_chart(s: &ScoreStats, area: Rect, buf: &mut Buffer) {
    if area.height < 3 || area.width < 8 {
        return;
    }
    // Two points per column the chart can show; the newest at the right edge.
    let width = area.width.saturating_sub(4).max(1) as usize * 2;
    let from = s.scores.len().saturating_sub(width);
    let shown = &s.scores[from..];
    let times =
        (s.times_ms.len() == s.scores.len() && !shown.is_empty()).then(|| &s.times_ms[from..]);
    let (points, x_max, labels): (Vec<(f64, f64)>, f64, Vec<String>) = match times {
        Some(times) => {
            let t0 = times[0];
            let t1 = times[times.len() - 1].max(t0);
            let points = shown
                .iter()
                .zip(times)
                .map(|(&y, &t)| ((t.max(t0) - t0) as f64 / 1000.0, y))
                .collect();
            let mid = t0 + (t1 - t0) / 2;
            let labels = if area.width >= 40 {
                vec![clock(t0), clock(mid), clock(t1)]
            } else {
                vec![clock(t0), clock(t1)]
            };
            (points, ((t1 - t0) as f64 / 1000.0).max(0.001), labels)
        }
        None => (
            shown
                .iter()
                .enumerate()
                .map(|(i, &y)| (i as f64, y))
                .collect(),
            (width.max(2) - 1) as f64,
            Vec::new(),
        ),
    };
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
    let mut x_axis = Axis::default().bounds([0.0, x_max]);
    if !labels.is_empty() {
        x_axis = x_axis.labels(labels).style(theme::muted());
    }
    Chart::new(datasets)
        .x_axis(x_axis)
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(["0".to_string(), format!("{y_max}")])
                .style(theme::muted()),
        )
        .render(area, buf);
    label_threshold(s.threshold, area, buf);
}

/// Writes `threshold 4` on the threshold line: the row with the most cells of its colour,
/// from the line's first cell.
fn label_threshold(threshold: f64, area: Rect, buf: &mut Buffer) {
    let is_line = |x: u16, y: u16| {
        buf.cell((x, y)).is_some_and(|c| {
            c.fg == theme::ALERT
                && c.symbol()
                    .chars()
                    .next()
                    .is_some_and(|ch| ('\u{2800}'..='\u{28FF}').contains(&ch))
        })
    };
    let Some((row, count)) = (area.top()..area.bottom())
        .map(|y| {
            (
                y,
                (area.left()..area.right())
                    .filter(|&x| is_line(x, y))
                    .count(),
            )
        })
        .max_by_key(|&(y, n)| (n, std::cmp::Reverse(y)))
    else {
        return;
    };
    if count < 4 {
        return;
    }
    let Some(first) = (area.left()..area.right()).find(|&x| is_line(x, row)) else {
        return;
    };
    let text = format!(" threshold {threshold} ");
    let room = area.right().saturating_sub(first + 1) as usize;
    if text.chars().count() > room {
        return;
    }
    buf.set_string(
        first + 1,
        row,
        text,
        Style::new().fg(theme::ALERT).add_modifier(Modifier::BOLD),
    );
}

fn render_alerts(s: &ScoreStats, area: Rect, buf: &mut Buffer, zoomed: bool) {
    if area.height == 0 {
        return;
    }
    if s.alerts_total == 0 && s.alerts.is_empty() {
        let text = match &s.device {
            Some(d) => format!("no alerts for {d}"),
            None => "no alerts yet".into(),
        };
        Line::styled(text, theme::muted()).render(area, buf);
        return;
    }
    let mut table_area = area;
    if zoomed {
        let [head, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
        let rows = (rest.height as usize).saturating_sub(1);
        let last = (s.alert_offset + rows.min(s.alerts.len())).min(s.alerts_total);
        let whose = s
            .device
            .as_deref()
            .map_or(String::new(), |d| format!(" of {d}"));
        Line::from(vec![
            Span::styled(
                format!("alert history{whose}"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                format!(
                    "  {}–{} of {} (newest first; ↑↓ scroll)",
                    (s.alert_offset + 1).min(last),
                    last,
                    s.alerts_total
                ),
                theme::muted(),
            ),
        ])
        .render(head, buf);
        table_area = rest;
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
    .header(Row::new(vec!["time", "device", "value", "score", "explanation"]).style(theme::muted()))
    .render(table_area, buf);
}

/// Readings scored, latest and max score and alerts per device, the highest max first; the
/// focused device highlighted and scrolled into view.
fn render_devices(s: &ScoreStats, area: Rect, buf: &mut Buffer) {
    if area.height < 2 {
        return;
    }
    let visible = (area.height - 1) as usize;
    let selected = s
        .device
        .as_ref()
        .and_then(|d| s.device_rows.iter().position(|r| &r.device == d));
    let offset = selected.map_or(0, |i| (i + 1).saturating_sub(visible));
    let rows = s.device_rows.iter().enumerate().skip(offset).map(|(i, r)| {
        let row = Row::new(vec![
            Cell::from(r.device.clone()),
            Cell::from(r.scored.to_string()),
            Cell::from(format!("{:.2}", r.latest)),
            Cell::from(format!("{:.2}", r.max)).style(if r.max > s.threshold {
                Style::new().fg(theme::ALERT)
            } else {
                Style::new()
            }),
            Cell::from(r.alerts.to_string()),
        ]);
        if Some(i) == selected {
            row.style(
                Style::new()
                    .fg(theme::ACCENT)
                    .add_modifier(Modifier::REVERSED),
            )
        } else {
            row
        }
    });
    Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
    )
    .header(Row::new(vec!["device", "scored", "latest", "max", "alerts"]).style(theme::muted()))
    .render(area, buf);
}
