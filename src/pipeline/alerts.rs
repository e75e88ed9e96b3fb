//! Alerts, replacing the seed's Lambda → SNS email: a consumer of the anomaly stream that
//! raises an alert for every scored reading above the threshold. Each alert (subject
//! `Anomaly Detected!`) is appended to `alerts.log` as one JSON line and fsynced, reported to
//! the dashboard, and POSTed as JSON to the webhook when one is set.
//!
//! The webhook runs on its own thread with a bounded queue: a slow or failing endpoint is
//! retried (3 attempts, backoff) and reported, and never holds back the pipeline; the alert is
//! in alerts.log whatever happens to the POST. The position is checkpointed after alerts.log
//! is durable; with no checkpoint the stage starts at the stream's latest record, so old
//! anomalies do not raise a burst of alerts on a first start.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::Utc;

use super::{
    Event, PipelineError, Reporter, Stage, StageState, Stall, StartAt, StopFlag, StreamRole,
    Streams, backoff, resume_from, save_position, spawn_stage,
};
use crate::records::{Alert, ScoredReading};

/// Webhook attempts per alert before giving up (the alert stays in alerts.log).
pub const WEBHOOK_ATTEMPTS: u32 = 3;
/// Alerts waiting for the webhook; beyond this the oldest waiting is skipped and reported.
pub const WEBHOOK_QUEUE: usize = 1_000;

#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub threshold: f64,
    pub log_path: PathBuf,
    pub webhook_url: Option<String>,
    pub checkpoint: PathBuf,
    pub webhook_timeout: Duration,
}

pub fn spawn(
    streams: Arc<dyn Streams>,
    settings: AlertSettings,
    report: Reporter,
    stop: StopFlag,
) -> std::io::Result<JoinHandle<()>> {
    spawn_stage(Stage::Alerts, report, move |report| {
        run(streams.as_ref(), &settings, report, &stop)
    })
}

fn run(
    streams: &dyn Streams,
    s: &AlertSettings,
    report: &Reporter,
    stop: &StopFlag,
) -> Result<(), PipelineError> {
    let from = resume_from(&s.checkpoint, Stage::Alerts, report, StartAt::Latest);
    let mut reader = streams.reader(StreamRole::Anomalies, from)?;
    let webhook = s.webhook_url.clone().map(|url| {
        let (tx, rx) = mpsc::sync_channel::<Alert>(WEBHOOK_QUEUE);
        let report = report.clone();
        let timeout = s.webhook_timeout;
        let thread = std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || post_alerts(&url, rx, timeout, &report));
        (tx, thread)
    });
    let detail = format!("score > {}", s.threshold);
    report(Event::Stage {
        stage: Stage::Alerts,
        state: StageState::Running,
        detail: detail.clone(),
    });
    let mut stall = Stall::new(Stage::Alerts, report, detail);
    let mut raised = 0u64;
    let mut stop_seen: Option<std::time::Instant> = None;
    let mut read_failures = crate::pipeline::ReadFailures::default();
    loop {
        let stopping = stop.is_stopped();
        if stopping && stop_seen.is_none() {
            stop_seen = Some(std::time::Instant::now());
        }
        // Kinesis (no record numbers): drain for at most DRAIN_LIMIT after stop.
        if stop_seen.is_some_and(|t| t.elapsed() >= super::DRAIN_LIMIT)
            && streams.last_sequence(StreamRole::Anomalies).is_none()
        {
            break;
        }
        let batch = super::next_batch(
            reader.as_mut(),
            500,
            Stage::Alerts,
            report,
            &mut read_failures,
        );
        let Some(last) = batch.last().map(|r| r.sequence) else {
            if stopping && reader.caught_up(stop_seen) {
                break;
            }
            reader.wait_for_more(super::IDLE_WAIT);
            continue;
        };
        let mut lines = Vec::new();
        let mut alerts = Vec::new();
        for r in batch {
            let scored = match ScoredReading::decode(&r.data) {
                Ok(s) => s,
                Err(e) => {
                    report(Event::Problem {
                        stage: Stage::Alerts,
                        message: format!("anomaly stream record {}: {e}", r.sequence),
                    });
                    continue;
                }
            };
            if scored.anomaly_score > s.threshold {
                let alert = Alert::new(scored, s.threshold, Utc::now());
                lines.extend_from_slice(&alert.encode());
                alerts.push(alert);
            }
        }
        if !lines.is_empty() {
            stall.retry(stop, || {
                append_durably(&s.log_path, &lines).map_err(|e| {
                    PipelineError::io(format!("append to {}", s.log_path.display()), e)
                })
            })?;
        }
        stall.retry(stop, || {
            save_position(&s.checkpoint, reader.as_ref(), last)
                .map_err(|e| PipelineError::io(format!("checkpoint {}", s.checkpoint.display()), e))
        })?;
        for alert in alerts {
            raised += 1;
            if let Some((tx, _)) = &webhook {
                match tx.try_send(alert.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => report(Event::Problem {
                        stage: Stage::Alerts,
                        message: format!(
                            "webhook queue full ({WEBHOOK_QUEUE}): alert for {} not posted (it is in alerts.log)",
                            alert.scored.reading.device_id
                        ),
                    }),
                    Err(TrySendError::Disconnected(_)) => {}
                }
            }
            report(Event::Alert(Box::new(alert)));
        }
    }
    if let Some((tx, thread)) = webhook {
        drop(tx);
        if let Ok(t) = thread {
            let _ = t.join();
        }
    }
    report(Event::Stage {
        stage: Stage::Alerts,
        state: StageState::Stopped,
        detail: format!("{raised} alerts raised"),
    });
    Ok(())
}

/// Appends whole lines and fsyncs: alerts.log never has a torn line from this process. A
/// write cut short (disk full) is cut back off, so the retry does not follow a torn line.
fn append_durably(path: &std::path::Path, lines: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let before = f.metadata()?.len();
    let result = f.write_all(lines).and_then(|_| f.sync_data());
    if result.is_err() {
        let _ = f.set_len(before);
    }
    result
}

fn post_alerts(url: &str, rx: Receiver<Alert>, timeout: Duration, report: &Reporter) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into();
    for alert in rx {
        let body = alert.encode();
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let result = agent
                .post(url)
                .header("content-type", "application/json")
                .send(&body[..]);
            match result {
                Ok(_) => break,
                Err(e) => {
                    let last = attempt == WEBHOOK_ATTEMPTS;
                    report(Event::Problem {
                        stage: Stage::Alerts,
                        message: if last {
                            format!(
                                "webhook {url}: {e}; gave up after {WEBHOOK_ATTEMPTS} attempts (the alert is in alerts.log)"
                            )
                        } else {
                            format!("webhook {url}: {e}; retrying ({attempt}/{WEBHOOK_ATTEMPTS})")
                        },
                    });
                    if !last {
                        std::thread::sleep(backoff(attempt + 2));
                    }
                }
            }
        }
    }
}
