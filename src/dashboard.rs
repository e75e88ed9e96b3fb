//! The dashboard's wiring, one function for the terminal (`iotaa`) and for `iotaa soak`: the
//! backend's pipeline with the dashboard's stages, an [`App`] attached to its producer, its
//! stack and its query engine, and a watcher that sends the stack's snapshots. Everything the
//! App hears arrives as an [`Action`] through `send`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use crate::action::{Action, Sender};
use crate::app::App;
use crate::app::query_jobs::QueryJobs;
use crate::app::stack_ops::StackRunner;
use crate::backend::Backend;
use crate::config::Loaded;
use crate::pipeline::run::{Pipeline, PipelineSettings};
use crate::pipeline::{Event, Reporter, Stage, StageState};
use crate::records::Alert;
use crate::stack::Stack;

/// How often the stack is described while it is changing, and otherwise.
const STACK_BUSY_EVERY: Duration = Duration::from_secs(3);
const STACK_IDLE_EVERY: Duration = Duration::from_secs(30);

/// Alerts read back from alerts.log at start (the newest), for the Scores pane's history.
pub const ALERT_HISTORY_KEPT: usize = crate::app::ALERTS_KEPT;

/// The dashboard's running parts. [`Running::shutdown`] stops them in order.
pub struct Running {
    pipeline: Pipeline,
    /// Dropping it ends the stack watcher.
    _watch: mpsc::Sender<()>,
    /// Kept alive: the streams, the stack and the query engine use its runtime.
    backend: Backend,
}

impl Running {
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.backend.runtime()
    }

    /// Stops the producer, drains the consumers, saves the model.
    pub fn shutdown(self) {
        self.pipeline.shutdown();
    }
}

/// Starts the pipeline with `settings` (the plan's dashboard stages, or a variation of them)
/// and an App wired to it.
pub fn start(
    loaded: &Loaded,
    backend: Backend,
    settings: PipelineSettings,
    send: Sender,
) -> Result<(App, Running)> {
    let mut app = App::new(loaded, crate::logging::log_file(&loaded.data_dir));
    let report: Reporter = {
        let send = send.clone();
        Arc::new(move |event| {
            send(Action::Pipeline(event));
        })
    };
    // What alerts.log holds before the pipeline starts is the history; what the alerts stage
    // appends from now on arrives as events (read only up to today's length: no alert twice).
    let alerts_log = backend.plan.alerts.log_path.clone();
    let history_len = std::fs::metadata(&alerts_log).map_or(0, |m| m.len());
    if history_len > 0 {
        read_alert_history(alerts_log, history_len, send.clone())?;
    }
    // A detector running elsewhere (the stack's Lambda function) has a row too, saying where.
    if let Some(detail) = backend.plan.detector_elsewhere_note() {
        report(Event::Stage {
            stage: Stage::Detector,
            state: StageState::Running,
            detail,
        });
    }
    let pipeline = Pipeline::start(backend.streams.clone(), settings, report)
        .wrap_err("cannot start the pipeline")?;
    if let Some(c) = pipeline.controller() {
        app.attach_producer(c);
    }
    let (wake, woken) = mpsc::channel();
    watch_stack(backend.stack.clone(), woken, send.clone())?;
    app.attach_stack_ops(Arc::new(StackRunner::new(
        backend.stack.clone(),
        send.clone(),
        wake.clone(),
    )));
    match &backend.query {
        Ok(engine) => app.attach_query_runner(Arc::new(QueryJobs::new(
            engine.clone(),
            backend.runtime(),
            send,
        ))),
        Err(why) => app.query_unavailable(format!("No query engine: {why}")),
    }
    Ok((
        app,
        Running {
            pipeline,
            _watch: wake,
            backend,
        },
    ))
}

/// Describes the stack now, then every 3 s while it is changing and every 30 s otherwise, and
/// at once when woken (a deploy or delete started in the dashboard). Ends when nobody listens
/// or every waker is gone.
fn watch_stack(stack: Arc<dyn Stack>, woken: mpsc::Receiver<()>, send: Sender) -> Result<()> {
    std::thread::Builder::new()
        .name("stack-watch".into())
        .spawn(move || {
            loop {
                let snapshot = stack.snapshot();
                let busy = snapshot.as_ref().is_ok_and(|s| s.in_progress());
                if !send(Action::Stack(snapshot)) {
                    return;
                }
                let pause = if busy {
                    STACK_BUSY_EVERY
                } else {
                    STACK_IDLE_EVERY
                };
                match woken.recv_timeout(pause) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .wrap_err("cannot start the stack watcher")?;
    Ok(())
}

/// Reads the first `len` bytes of alerts.log on a thread and sends the newest
/// [`ALERT_HISTORY_KEPT`] alerts (and how many lines could not be read) to the App.
fn read_alert_history(path: PathBuf, len: u64, send: Sender) -> Result<()> {
    std::thread::Builder::new()
        .name("alert-history".into())
        .spawn(move || match std::fs::File::open(&path) {
            Ok(file) => {
                let (alerts, skipped) = alert_history(file.take(len), ALERT_HISTORY_KEPT);
                send(Action::AlertHistory { alerts, skipped });
            }
            Err(e) => tracing::warn!("cannot read {}: {e}", path.display()),
        })
        .wrap_err("cannot start the alert history reader")?;
    Ok(())
}

/// The last `keep` alerts of an alerts.log (oldest first) and how many lines did not decode
/// (a malformed or cut-short line is skipped and counted, never fatal).
pub fn alert_history(log: impl Read, keep: usize) -> (Vec<Alert>, usize) {
    let mut alerts = std::collections::VecDeque::with_capacity(keep.min(1024));
    let mut skipped = 0;
    let mut reader = BufReader::new(log);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => {
                skipped += 1;
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Alert::decode(&line) {
            Ok(alert) => {
                if alerts.len() == keep {
                    alerts.pop_front();
                }
                if keep > 0 {
                    alerts.push_back(alert);
                }
            }
            Err(_) => skipped += 1,
        }
    }
    (alerts.into(), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Reading, ScoredReading};

    fn alert(device: &str) -> Alert {
        Alert::new(
            ScoredReading {
                reading: Reading {
                    device_id: device.into(),
                    sensor_reading: 450,
                    reading_timestamp: "2026-11-30 05:00:01.000".into(),
                },
                anomaly_score: 7.5,
                explanation: None,
            },
            4.0,
            chrono::DateTime::from_timestamp(1_796_014_801, 0).unwrap(),
        )
    }

    #[test]
    fn the_alert_history_keeps_the_newest_and_counts_bad_lines() {
        let mut log = Vec::new();
        for i in 0..5 {
            log.extend(alert(&format!("d{i}")).encode());
            if i == 2 {
                log.extend(b"not json\n\n");
            }
        }
        log.extend(b"{\"deviceId\":\"cut"); // a line cut short by a crash
        let (alerts, skipped) = alert_history(&log[..], 3);
        let devices: Vec<&str> = alerts
            .iter()
            .map(|a| a.scored.reading.device_id.as_str())
            .collect();
        assert_eq!(devices, ["d2", "d3", "d4"], "the newest 3, oldest first");
        assert_eq!(skipped, 2);
        assert_eq!(alert_history(&b""[..], 3), (vec![], 0));
        assert_eq!(alert_history(&log[..], 0).0, vec![]);
    }
}
