//! What stages report: [`Event`], the stages and their states, and the one text each event
//! has for a person, shared by the dashboard's status line and the headless commands' stderr.

use crate::records::{Alert, ScoredReading};

/// A stage's state, for the Stack pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Starting,
    Running,
    Paused,
    /// Cannot write (disk full, read-only folder, a stream refusing requests): the stage holds
    /// what it has and retries; the detail is the error. It returns to `Running` on success.
    Blocked,
    Stopped,
    Failed,
}

/// The stages, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Producer,
    Delivery,
    Detector,
    Alerts,
    Tail,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Producer => "producer",
            Stage::Delivery => "delivery",
            Stage::Detector => "detector",
            Stage::Alerts => "alerts",
            Stage::Tail => "tail",
        }
    }
}

/// Cumulative producer counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProducerCounts {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub retries: u64,
    pub bytes: u64,
    pub rate_per_device: f64,
    pub paused: bool,
}

/// Where the detector stage is.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DetectorProgress {
    pub scored: u64,
    /// `Some((seen, needed))` while warming up.
    pub warming_up: Option<(u64, u64)>,
    /// Readings on the stream not yet scored (local streams, which number their records).
    pub lag_records: u64,
    /// How far behind the stream's newest record the reader is, in milliseconds, where the
    /// stream says so instead (Kinesis' MillisBehindLatest).
    pub lag_ms: Option<u64>,
}

impl DetectorProgress {
    /// `N scored, M behind` or `N scored, 1.2 s behind`.
    pub fn describe(&self) -> String {
        match self.lag_ms {
            Some(ms) => format!("{} scored, {:.1} s behind", self.scored, ms as f64 / 1000.0),
            None => format!("{} scored, {} behind", self.scored, self.lag_records),
        }
    }
}

/// Everything a stage reports. The dashboard maps these to actions; `produce` prints them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Stage {
        stage: Stage,
        state: StageState,
        detail: String,
    },
    Producer(ProducerCounts),
    /// A spike was sent.
    Spike {
        device: String,
        value: i64,
    },
    Delivered {
        objects: u64,
        records: u64,
        /// Seconds from the oldest record's arrival to the object being durable.
        lag_secs: f64,
        key: String,
    },
    Detector(DetectorProgress),
    /// Scored readings tailed from the anomaly stream, in order.
    Scores(Vec<ScoredReading>),
    Alert(Box<Alert>),
    /// Something went wrong but the stage goes on (bad record, webhook retry, …).
    Problem {
        stage: Stage,
        message: String,
    },
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Event {
    /// The one line a person is told of a notable event: a stage failing or blocked, a stage
    /// resuming after it was blocked (`was`: its state before this event), a spike sent, an
    /// alert, a problem. `None` for routine progress.
    pub fn notice(&self, was: Option<StageState>) -> Option<(Level, String)> {
        Some(match self {
            Event::Stage {
                stage,
                state: state @ (StageState::Failed | StageState::Blocked),
                detail,
            } => {
                let word = if *state == StageState::Failed {
                    "failed"
                } else {
                    "blocked"
                };
                (Level::Error, format!("{} {word}: {detail}", stage.name()))
            }
            Event::Stage {
                stage,
                state: StageState::Running,
                detail,
            } if was == Some(StageState::Blocked) => {
                (Level::Info, format!("{} resumed: {detail}", stage.name()))
            }
            Event::Spike { device, value } => {
                (Level::Info, format!("Spike sent: {device} = {value}"))
            }
            Event::Alert(alert) => {
                let r = &alert.scored.reading;
                (
                    Level::Error,
                    format!(
                        "{} {} = {}, score {:.2}",
                        alert.subject, r.device_id, r.sensor_reading, alert.scored.anomaly_score
                    ),
                )
            }
            Event::Problem { stage, message } => {
                (Level::Warning, format!("{}: {message}", stage.name()))
            }
            _ => return None,
        })
    }

    /// One line for any event (headless commands print these on stderr): its notice when it
    /// has one, else its progress.
    pub fn line(&self, was: Option<StageState>) -> String {
        if let Some((_, text)) = self.notice(was) {
            return text;
        }
        match self {
            Event::Stage {
                stage,
                state,
                detail,
            } => format!(
                "{}: {}: {detail}",
                stage.name(),
                format!("{state:?}").to_lowercase()
            ),
            Event::Producer(c) => format!("producer: sent {} acked {}", c.sent, c.acknowledged),
            Event::Delivered {
                objects,
                records,
                lag_secs,
                key,
            } => {
                format!("delivery: object {objects}: {records} records, lag {lag_secs:.1} s: {key}")
            }
            Event::Detector(p) => match p.warming_up {
                Some((seen, needed)) => format!("detector: warming up {seen}/{needed}"),
                None => format!("detector: {}", p.describe()),
            },
            Event::Scores(s) => format!("tail: {} scores", s.len()),
            // Notices, handled above.
            Event::Spike { .. } | Event::Alert(_) | Event::Problem { .. } => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_in_records_locally_and_in_seconds_on_kinesis() {
        let mut p = DetectorProgress {
            scored: 1_200,
            warming_up: None,
            lag_records: 35,
            lag_ms: None,
        };
        assert_eq!(p.describe(), "1200 scored, 35 behind");
        p.lag_ms = Some(2_340);
        assert_eq!(p.describe(), "1200 scored, 2.3 s behind");
    }

    #[test]
    fn a_stage_blocking_and_resuming_reads_the_same_everywhere() {
        let blocked = Event::Stage {
            stage: Stage::Producer,
            state: StageState::Blocked,
            detail: "No space left on device".into(),
        };
        assert_eq!(
            blocked.notice(Some(StageState::Running)),
            Some((
                Level::Error,
                "producer blocked: No space left on device".into()
            ))
        );
        assert_eq!(
            blocked.line(None),
            "producer blocked: No space left on device"
        );
        let running = Event::Stage {
            stage: Stage::Producer,
            state: StageState::Running,
            detail: "5 readings/s (resumed after 3 s blocked)".into(),
        };
        assert_eq!(
            running.line(Some(StageState::Blocked)),
            "producer resumed: 5 readings/s (resumed after 3 s blocked)"
        );
        assert_eq!(running.notice(Some(StageState::Running)), None);
        assert_eq!(
            running.line(Some(StageState::Running)),
            "producer: running: 5 readings/s (resumed after 3 s blocked)"
        );
    }
}
