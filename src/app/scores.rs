//! The Scores pane: scores tailed from the anomaly stream (all devices, or one at a time), the
//! detector's progress (warm-up, lag), the alert history (read back from `alerts.log` at start)
//! and a row per device.

use std::collections::{BTreeMap, VecDeque};

use ui::{AlertRow, DeviceRow, ScoreStats, ScoreWindow, ScoresView};

use super::series::Series;
use crate::pipeline::{DetectorProgress, Event, Stage};
use crate::records::{Alert, parse_timestamp};
use crate::stack::FunctionFigures;

/// Scores kept for the all-devices chart.
pub const SCORES_KEPT: usize = 4_000;
/// Alerts kept in the history (live ones and those read back from alerts.log), newest first.
pub const ALERTS_KEPT: usize = 1_000;
/// Devices with their own chart and row: the `DEVICES_KEPT` most recently seen. When a new
/// device arrives with the table full, the one not seen for longest goes (and the focus goes
/// back to all devices if it was that one).
pub const DEVICES_KEPT: usize = 100;
/// Scores kept per device for its chart.
pub const DEVICE_SCORES_KEPT: usize = 1_000;

/// One score on the time axis: the reading's timestamp (ms since the epoch) and its score.
type Point = (i64, f64);

/// One device's scores and figures.
#[derive(Debug)]
struct DeviceState {
    scores: Series<Point>,
    scored: u64,
    latest: f64,
    max: f64,
    /// When it was last seen, in scores folded (to drop the least recently seen).
    seen: u64,
}

/// The Scores pane's state.
#[derive(Debug)]
pub struct ScoresPane {
    threshold: f64,
    detector: Option<DetectorProgress>,
    /// The figures of the detector when it runs elsewhere (the stack's Lambda function).
    remote: Option<FunctionFigures>,
    scores: Series<Point>,
    /// Bounded by [`DEVICES_KEPT`].
    devices: BTreeMap<String, DeviceState>,
    /// Scores folded so far (the devices' `seen` clock).
    folded: u64,
    /// The device the chart shows; `None`: all.
    focus: Option<String>,
    /// Most recent first; bounded by [`ALERTS_KEPT`].
    alerts: VecDeque<AlertRow>,
    /// Alerts raised since the dashboard started (the alerts stage's figure).
    alerts_total: u64,
    /// First alert shown (0: the newest), in the focused device's alerts.
    alert_offset: usize,
}

/// The ms timestamp of a reading, if it parses.
fn millis(timestamp: &str) -> Option<i64> {
    parse_timestamp(timestamp).map(|t| t.timestamp_millis())
}

fn alert_row(alert: &Alert) -> AlertRow {
    let r = &alert.scored.reading;
    AlertRow {
        time: alert
            .alert_time
            .get(11..19)
            .unwrap_or(&alert.alert_time)
            .to_string(),
        device: r.device_id.clone(),
        value: r.sensor_reading,
        score: alert.scored.anomaly_score,
        explanation: alert.scored.explanation_summary(),
    }
}

/// The value below which `q` of the sorted `values` fall (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl ScoresPane {
    pub fn new(threshold: f64) -> Self {
        ScoresPane {
            threshold,
            detector: None,
            remote: None,
            scores: Series::with_capacity(SCORES_KEPT),
            devices: BTreeMap::new(),
            folded: 0,
            focus: None,
            alerts: VecDeque::new(),
            alerts_total: 0,
            alert_offset: 0,
        }
    }

    /// Folds the detector's progress, scores and alerts in. Returns whether the pane changed.
    pub fn on_event(&mut self, event: &Event) -> bool {
        match event {
            Event::Detector(progress) => self.detector = Some(*progress),
            Event::Scores(batch) => {
                for s in batch {
                    // The time axis never runs backwards: a reading without a timestamp (or
                    // one older than the last) is drawn at the last time.
                    let last = self.scores.last().map(|(t, _)| t);
                    let t = match (millis(&s.reading.reading_timestamp), last) {
                        (Some(t), Some(last)) => t.max(last),
                        (Some(t), None) => t,
                        (None, last) => last.unwrap_or(0),
                    };
                    self.scores.push((t, s.anomaly_score));
                    self.fold_device(&s.reading.device_id, (t, s.anomaly_score));
                }
            }
            Event::Alert(alert) => {
                let row = alert_row(alert);
                if self.alert_offset > 0 && self.shows(&row) {
                    // Keep the rows in view where they are.
                    self.alert_offset += 1;
                }
                self.alerts.push_front(row);
                self.alerts.truncate(ALERTS_KEPT);
                self.alerts_total += 1;
            }
            _ => return false,
        }
        true
    }

    fn fold_device(&mut self, device: &str, point: Point) {
        self.folded += 1;
        if !self.devices.contains_key(device) && self.devices.len() >= DEVICES_KEPT {
            let oldest = self
                .devices
                .iter()
                .min_by_key(|(_, d)| d.seen)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                self.devices.remove(&oldest);
                if self.focus.as_ref() == Some(&oldest) {
                    self.focus = None;
                }
            }
        }
        let d = self
            .devices
            .entry(device.to_string())
            .or_insert_with(|| DeviceState {
                scores: Series::with_capacity(DEVICE_SCORES_KEPT),
                scored: 0,
                latest: 0.0,
                max: f64::MIN,
                seen: 0,
            });
        d.scores.push(point);
        d.scored += 1;
        d.latest = point.1;
        d.max = d.max.max(point.1);
        d.seen = self.folded;
    }

    /// The alerts read back from alerts.log at start, oldest first: older than any alert
    /// raised since, they go after them. Returns whether the pane changed.
    pub fn load_history(&mut self, history: &[Alert]) -> bool {
        for alert in history.iter().rev() {
            if self.alerts.len() >= ALERTS_KEPT {
                break;
            }
            self.alerts.push_back(alert_row(alert));
        }
        !history.is_empty()
    }

    /// Cycles the chart's focus: all devices, then each device seen in name order, then all
    /// again (`step` 1 forward, -1 back). Returns whether the pane changed.
    pub fn cycle_device(&mut self, step: isize) -> bool {
        if self.devices.is_empty() {
            return false;
        }
        let names: Vec<&String> = self.devices.keys().collect();
        // 0 is all devices, i + 1 the i-th device.
        let at = self
            .focus
            .as_ref()
            .and_then(|f| names.iter().position(|n| *n == f))
            .map_or(0, |i| i + 1) as isize;
        let n = names.len() as isize + 1;
        let next = (at + step).rem_euclid(n) as usize;
        self.focus = (next > 0).then(|| names[next - 1].clone());
        self.alert_offset = 0;
        true
    }

    /// The device the chart shows, if one.
    pub fn focused_device(&self) -> Option<&str> {
        self.focus.as_deref()
    }

    /// Scrolls the alert history by `rows` (positive: older). Returns whether it moved.
    pub fn scroll(&mut self, rows: isize) -> bool {
        let total = self.alerts.iter().filter(|a| self.shows(a)).count();
        let was = self.alert_offset;
        self.alert_offset = self
            .alert_offset
            .saturating_add_signed(rows)
            .min(total.saturating_sub(1));
        self.alert_offset != was
    }

    /// Whether an alert belongs in the list (the focused device's, or any).
    fn shows(&self, row: &AlertRow) -> bool {
        self.focus.as_ref().is_none_or(|d| &row.device == d)
    }

    /// The latest counts of the detector, alerts or tail stage, for its Stack row.
    /// The figures of the detector that runs elsewhere (from the stack's description).
    pub fn set_remote(&mut self, figures: Option<FunctionFigures>) -> bool {
        let changed = self.remote != figures;
        self.remote = figures;
        changed
    }

    pub fn live_figures(&self, stage: Stage) -> String {
        match stage {
            Stage::Detector => match self.detector {
                Some(DetectorProgress {
                    warming_up: Some((seen, needed)),
                    ..
                }) => format!("warming up {seen}/{needed}"),
                Some(s) => s.describe(),
                None => String::new(),
            },
            Stage::Alerts => format!("{} alerts", self.alerts_total),
            Stage::Tail => format!("{} scores shown", self.scores.len()),
            _ => String::new(),
        }
    }

    /// The pane. Its chart draws two scores per column (braille): only the newest
    /// `2 × columns` scores go into the view (all of them when the width is not known), and
    /// only `rows` alerts (a screenful) from the scroll position.
    pub fn view(&self, columns: Option<usize>, rows: Option<usize>) -> ScoresView {
        let has_data =
            self.detector.is_some() || !self.scores.is_empty() || !self.alerts.is_empty();
        let stats = has_data.then(|| {
            let progress = self.detector.unwrap_or_default();
            let series = match self.focus.as_ref().and_then(|d| self.devices.get(d)) {
                Some(d) => &d.scores,
                None => &self.scores,
            };
            let tail = series.tail(columns.map_or(usize::MAX, |c| c.saturating_mul(2)));
            let mut window: Vec<f64> = series.iter().map(|(_, s)| s).collect();
            window.sort_by(f64::total_cmp);
            let shown: Vec<&AlertRow> = self.alerts.iter().filter(|a| self.shows(a)).collect();
            let mut alerts_per_device: BTreeMap<&str, u64> = BTreeMap::new();
            for a in &self.alerts {
                *alerts_per_device.entry(a.device.as_str()).or_default() += 1;
            }
            let mut device_rows: Vec<DeviceRow> = self
                .devices
                .iter()
                .map(|(name, d)| DeviceRow {
                    device: name.clone(),
                    scored: d.scored,
                    latest: d.latest,
                    max: d.max,
                    alerts: alerts_per_device.get(name.as_str()).copied().unwrap_or(0),
                })
                .collect();
            device_rows.sort_by(|a, b| b.max.total_cmp(&a.max).then(a.device.cmp(&b.device)));
            ScoreStats {
                scores: tail.iter().map(|(_, s)| *s).collect(),
                times_ms: tail.iter().map(|(t, _)| *t).collect(),
                threshold: self.threshold,
                latest: series.last().map(|(_, s)| s),
                warming_up: progress.warming_up,
                lag_records: progress.lag_records,
                // Kinesis says how far behind in time instead of in records.
                lag_secs: progress
                    .lag_ms
                    .or(self.remote.and_then(|f| f.iterator_age_ms))
                    .map(|ms| ms as f64 / 1000.0),
                detector_note: self
                    .remote
                    .map(|f| (format!("Lambda: {}", f.counts()), f.troubled())),
                alerts: shown
                    .iter()
                    .skip(self.alert_offset)
                    .take(rows.unwrap_or(usize::MAX))
                    .map(|a| (*a).clone())
                    .collect(),
                alerts_total: shown.len(),
                alert_offset: self.alert_offset,
                devices: self.devices.keys().cloned().collect(),
                device: self.focus.clone(),
                window: (!window.is_empty()).then(|| ScoreWindow {
                    readings: window.len(),
                    p50: percentile(&window, 0.50),
                    p99: percentile(&window, 0.99),
                    max: window[window.len() - 1],
                    above_threshold: window.len()
                        - window.partition_point(|&s| s <= self.threshold),
                }),
                device_rows,
            }
        });
        ScoresView {
            stats,
            waiting_for: "Waiting for the anomaly stream: no scored readings yet.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Reading, ScoredReading};

    fn scored(device: &str, second: u32, score: f64) -> ScoredReading {
        ScoredReading {
            reading: Reading {
                device_id: device.into(),
                sensor_reading: 1,
                reading_timestamp: format!("2026-11-30 05:00:{second:02}.000"),
            },
            anomaly_score: score,
            explanation: None,
        }
    }

    fn alert(device: &str, score: f64) -> Alert {
        Alert::new(
            scored(device, 0, score),
            4.0,
            chrono::DateTime::from_timestamp(1_796_014_801, 0).unwrap(),
        )
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn the_focus_cycles_all_then_each_device_and_filters_chart_and_alerts() {
        let mut p = ScoresPane::new(4.0);
        assert!(!p.cycle_device(1), "no device seen yet");
        p.on_event(&Event::Scores(vec![
            scored("bbbb", 1, 0.5),
            scored("aaaa", 2, 6.0),
            scored("bbbb", 3, 5.0),
        ]));
        p.on_event(&Event::Alert(Box::new(alert("aaaa", 6.0))));
        p.on_event(&Event::Alert(Box::new(alert("bbbb", 5.0))));
        let all = p.view(None, None).stats.unwrap();
        assert_eq!(all.scores, [0.5, 6.0, 5.0]);
        assert_eq!(all.times_ms.len(), 3);
        assert_eq!(all.times_ms[2] - all.times_ms[0], 2_000);
        assert_eq!((all.alerts_total, all.device), (2, None));
        let w = all.window.unwrap();
        assert_eq!(
            (w.readings, w.p50, w.max, w.above_threshold),
            (3, 5.0, 6.0, 2)
        );
        let rows: Vec<(&str, u64, u64)> = all
            .device_rows
            .iter()
            .map(|r| (r.device.as_str(), r.scored, r.alerts))
            .collect();
        assert_eq!(rows, [("aaaa", 1, 1), ("bbbb", 2, 1)], "highest max first");

        assert!(p.cycle_device(1));
        let a = p.view(None, None).stats.unwrap();
        assert_eq!(a.device.as_deref(), Some("aaaa"));
        assert_eq!((a.scores, a.latest), (vec![6.0], Some(6.0)));
        assert_eq!(a.alerts.len(), 1);
        assert_eq!(a.alerts[0].device, "aaaa");
        p.cycle_device(1);
        assert_eq!(p.focused_device(), Some("bbbb"));
        assert_eq!(p.view(None, None).stats.unwrap().scores, [0.5, 5.0]);
        p.cycle_device(1);
        assert_eq!(p.focused_device(), None, "back to all devices");
        p.cycle_device(-1);
        assert_eq!(p.focused_device(), Some("bbbb"), "backwards from all");
    }

    #[test]
    fn devices_are_bounded_dropping_the_least_recently_seen() {
        let mut p = ScoresPane::new(4.0);
        p.on_event(&Event::Scores(vec![scored("first", 0, 1.0)]));
        p.cycle_device(1);
        assert_eq!(p.focused_device(), Some("first"));
        let batch: Vec<ScoredReading> = (0..DEVICES_KEPT + 5)
            .map(|i| scored(&format!("d{i:04}"), 1, 1.0))
            .collect();
        p.on_event(&Event::Scores(batch));
        assert_eq!(p.devices.len(), DEVICES_KEPT);
        assert!(!p.devices.contains_key("first"));
        assert!(!p.devices.contains_key("d0000"));
        assert!(p.devices.contains_key(&format!("d{:04}", DEVICES_KEPT + 4)));
        assert_eq!(p.focused_device(), None, "the focused device went");
    }

    #[test]
    fn history_goes_after_live_alerts_and_scrolls() {
        let mut p = ScoresPane::new(4.0);
        p.on_event(&Event::Alert(Box::new(alert("live", 9.0))));
        let history: Vec<Alert> = (0..5).map(|i| alert(&format!("old{i}"), 5.0)).collect();
        assert!(p.load_history(&history));
        let v = p.view(None, Some(2)).stats.unwrap();
        let devices: Vec<&str> = v.alerts.iter().map(|a| a.device.as_str()).collect();
        assert_eq!(devices, ["live", "old4"], "newest first, a screenful");
        assert_eq!(v.alerts_total, 6);
        assert!(p.scroll(3));
        let v = p.view(None, Some(2)).stats.unwrap();
        assert_eq!((v.alert_offset, v.alerts[0].device.as_str()), (3, "old2"));
        assert!(p.scroll(100));
        assert_eq!(p.alert_offset, 5, "stops at the oldest");
        assert!(!p.scroll(1));
        // A new alert keeps the scrolled rows in place.
        p.on_event(&Event::Alert(Box::new(alert("new", 9.0))));
        assert_eq!(
            p.view(None, Some(1)).stats.unwrap().alerts[0].device,
            "old0"
        );
        assert!(p.scroll(-100));
        assert_eq!(p.alert_offset, 0);
    }

    #[test]
    fn a_detector_in_lambda_gives_the_lag_and_its_figures() {
        let mut p = ScoresPane::new(4.0);
        p.on_event(&Event::Scores(vec![scored("aaaa", 0, 1.0)]));
        assert_eq!(p.view(None, None).stats.unwrap().detector_note, None);
        let figures = FunctionFigures {
            iterator_age_ms: Some(2_500),
            invocations: 12,
            errors: 0,
            throttles: 0,
            window_mins: 5,
        };
        assert!(p.set_remote(Some(figures)));
        assert!(
            !p.set_remote(Some(figures)),
            "unchanged figures redraw nothing"
        );
        let v = p.view(None, None).stats.unwrap();
        assert_eq!(v.lag_secs, Some(2.5));
        assert_eq!(
            v.detector_note,
            Some((
                "Lambda: 12 invocations, 0 errors, 0 throttles in 5 min".to_string(),
                false
            ))
        );
        p.set_remote(Some(FunctionFigures {
            errors: 3,
            ..figures
        }));
        assert!(
            p.view(None, None).stats.unwrap().detector_note.unwrap().1,
            "errors warn"
        );
    }
}
