//! `iotaa tail`: scored readings from the anomaly stream as they arrive.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::Result;

use super::{parse_from, stop_on_signal};
use crate::backend;
use crate::cli::Format;
use crate::config::Loaded;
use crate::pipeline::{Reporter, Stage, StreamRole, next_batch};
use crate::records::ScoredReading;

/// `iotaa tail`: scored readings from the anomaly stream as they arrive.
pub fn tail(loaded: &Loaded, from: &str, count: Option<u64>, format: Format) -> Result<ExitCode> {
    let from = parse_from(from)?;
    let backend = backend::open(loaded)?;
    let mut reader = backend.streams.reader(StreamRole::Anomalies, from)?;
    let stop = stop_on_signal();
    // A damaged record is reported (one line on stderr) and reading goes on after it.
    let report: Reporter = Arc::new(|event| eprintln!("{}", event.line(None)));
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    match format {
        Format::Table => writeln!(
            out,
            "{:<23}  {:<8}  {:>8}  {:>7}  explanation",
            "readingTimestamp", "device", "reading", "score"
        )?,
        Format::Csv => writeln!(out, "readingTimestamp,deviceId,sensorReading,ANOMALY_SCORE")?,
        Format::Json => {}
    }
    out.flush()?;
    let mut read_failures = crate::pipeline::ReadFailures::default();
    while !stop.is_stopped() && count.is_none_or(|c| printed < c) {
        let batch = next_batch(
            reader.as_mut(),
            500,
            Stage::Tail,
            &report,
            &mut read_failures,
        );
        if batch.is_empty() {
            reader.wait_for_more(Duration::from_millis(250));
            continue;
        }
        for r in batch {
            if count.is_some_and(|c| printed >= c) {
                break;
            }
            match ScoredReading::decode(&r.data) {
                Ok(s) => {
                    let rd = &s.reading;
                    match format {
                        Format::Json => out.write_all(&s.encode())?,
                        Format::Csv => writeln!(
                            out,
                            "{},{},{},{}",
                            rd.reading_timestamp, rd.device_id, rd.sensor_reading, s.anomaly_score
                        )?,
                        Format::Table => writeln!(
                            out,
                            "{:<23}  {:<8}  {:>8}  {:>7.3}  {}",
                            rd.reading_timestamp,
                            rd.device_id,
                            rd.sensor_reading,
                            s.anomaly_score,
                            s.explanation_summary()
                        )?,
                    }
                    printed += 1;
                }
                Err(e) => eprintln!("tail: anomaly stream record {}: {e}", r.sequence),
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
