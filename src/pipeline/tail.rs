//! The tail: reads scored readings from the anomaly stream for the Scores pane and
//! `iotaa tail`. What the sparkline shows is what is on the stream, never the detector's
//! memory.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    Event, PipelineError, Reporter, Stage, StartAt, StopFlag, StreamRole, Streams, spawn_stage,
};
use crate::records::ScoredReading;

/// At most this often a batch of scores goes to the dashboard (it redraws ≤ 30 fps anyway).
const REPORT_EVERY: Duration = Duration::from_millis(100);

pub fn spawn(
    streams: Arc<dyn Streams>,
    from: StartAt,
    report: Reporter,
    stop: StopFlag,
) -> std::io::Result<JoinHandle<()>> {
    spawn_stage(Stage::Tail, report, move |report| {
        run(streams.as_ref(), from, report, &stop)
    })
}

fn run(
    streams: &dyn Streams,
    from: StartAt,
    report: &Reporter,
    stop: &StopFlag,
) -> Result<(), PipelineError> {
    let mut reader = streams.reader(StreamRole::Anomalies, from)?;
    let mut pending: Vec<ScoredReading> = Vec::new();
    let mut last_report = Instant::now();
    let mut read_failures = crate::pipeline::ReadFailures::default();
    while !stop.is_stopped() {
        let batch = super::next_batch(
            reader.as_mut(),
            1_000,
            Stage::Tail,
            report,
            &mut read_failures,
        );
        let empty = batch.is_empty();
        for r in batch {
            match ScoredReading::decode(&r.data) {
                Ok(s) => pending.push(s),
                Err(e) => report(Event::Problem {
                    stage: Stage::Tail,
                    message: format!("anomaly stream record {}: {e}", r.sequence),
                }),
            }
        }
        if !pending.is_empty() && (empty || last_report.elapsed() >= REPORT_EVERY) {
            report(Event::Scores(std::mem::take(&mut pending)));
            last_report = Instant::now();
        }
        if empty {
            reader.wait_for_more(super::IDLE_WAIT);
        }
    }
    Ok(())
}
