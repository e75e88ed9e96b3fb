//! The Scores pane: scores tailed from the anomaly stream, the detector's progress (warm-up,
//! lag) and the latest alerts.

use std::collections::VecDeque;

use ui::{AlertRow, ScoreStats, ScoresView};

use super::series::Series;
use crate::pipeline::{DetectorProgress, Event, Stage};

/// Scores kept for the Scores pane.
pub const SCORES_KEPT: usize = 4_000;
/// Alerts listed in the Scores pane.
pub const ALERTS_KEPT: usize = 50;

/// The Scores pane's state.
#[derive(Debug)]
pub struct ScoresPane {
    threshold: f64,
    detector: Option<DetectorProgress>,
    scores: Series<f64>,
    /// Most recent first.
    alerts: VecDeque<AlertRow>,
    alerts_total: u64,
}

impl ScoresPane {
    pub fn new(threshold: f64) -> Self {
        ScoresPane {
            threshold,
            detector: None,
            scores: Series::with_capacity(SCORES_KEPT),
            alerts: VecDeque::new(),
            alerts_total: 0,
        }
    }

    /// Folds the detector's progress, scores and alerts in. Returns whether the pane changed.
    pub fn on_event(&mut self, event: &Event) -> bool {
        match event {
            Event::Detector(progress) => self.detector = Some(*progress),
            Event::Scores(batch) => self.scores.extend(batch.iter().map(|s| s.anomaly_score)),
            Event::Alert(alert) => {
                let r = &alert.scored.reading;
                self.alerts.push_front(AlertRow {
                    time: alert
                        .alert_time
                        .get(11..19)
                        .unwrap_or(&alert.alert_time)
                        .to_string(),
                    device: r.device_id.clone(),
                    value: r.sensor_reading,
                    score: alert.scored.anomaly_score,
                    explanation: alert.scored.explanation_summary(),
                });
                self.alerts.truncate(ALERTS_KEPT);
                self.alerts_total += 1;
            }
            _ => return false,
        }
        true
    }

    /// The latest counts of the detector, alerts or tail stage, for its Stack row.
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
    /// `2 × columns` scores go into the view (all of them when the width is not known).
    pub fn view(&self, columns: Option<usize>) -> ScoresView {
        let stats = (self.detector.is_some() || !self.scores.is_empty()).then(|| {
            let progress = self.detector.unwrap_or_default();
            ScoreStats {
                scores: self
                    .scores
                    .tail(columns.map_or(usize::MAX, |c| c.saturating_mul(2))),
                threshold: self.threshold,
                latest: self.scores.last(),
                warming_up: progress.warming_up,
                lag_records: progress.lag_records,
                // Kinesis says how far behind in time instead of in records.
                lag_secs: progress.lag_ms.map(|ms| ms as f64 / 1000.0),
                alerts: self.alerts.iter().cloned().collect(),
            }
        });
        ScoresView {
            stats,
            waiting_for: "Waiting for the anomaly stream: no scored readings yet.".into(),
        }
    }
}
