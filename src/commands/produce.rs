//! `iotaa produce` (the pipeline without the dashboard) and `iotaa spike` (one anomalous
//! reading).

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};

use super::{EventLines, stop_on_signal};
use crate::backend;
use crate::config::Loaded;
use crate::pipeline::producer::spike_reading;
use crate::pipeline::run::Pipeline;
use crate::pipeline::{Event, Reporter, StopFlag, StreamRole, put_all};

/// `iotaa produce`: the whole local pipeline without the dashboard.
pub fn produce(
    loaded: &Loaded,
    rate: Option<f64>,
    count: Option<u64>,
    duration: Option<Duration>,
    ack_log: Option<std::path::PathBuf>,
    producer_only: bool,
) -> Result<ExitCode> {
    if let Some(path) = &ack_log {
        // Fail here, with one line, rather than in the producer thread.
        crate::pipeline::producer::open_ack_log(path)
            .wrap_err_with(|| format!("--ack-log {}", path.display()))?;
    }
    let backend = backend::open(loaded)?;
    let mut producer = backend.plan.producer.clone();
    producer.start_paused = false;
    producer.limit = count;
    producer.ack_log = ack_log;
    if let Some(r) = rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(eyre!(
                "--rate: expected a positive number of readings per second per device, got {r}"
            ));
        }
        if r > producer.max_rate_per_device {
            return Err(eyre!(
                "--rate {r}: expected at most {} readings/s per device on this backend (Kinesis takes 1,000 records/s per partition key, and the key is the device id)",
                producer.max_rate_per_device
            ));
        }
        producer.rate_per_device = r;
    }
    let last_counts = Arc::new(Mutex::new(None));
    let alerts = Arc::new(Mutex::new(0u64));
    let report: Reporter = {
        let last_counts = last_counts.clone();
        let alerts = alerts.clone();
        let lines = EventLines::default();
        Arc::new(move |event| match event {
            Event::Producer(c) => {
                if let Ok(mut l) = last_counts.lock() {
                    *l = Some(c);
                }
            }
            Event::Alert(a) => {
                if let Ok(mut n) = alerts.lock() {
                    *n += 1;
                }
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&a.encode());
            }
            other => eprintln!("{}", lines.line(&other)),
        })
    };
    // The backend's plan says which consumers this process runs (on AWS Firehose delivers to
    // the lake; the stack's function mails through SNS).
    let settings = backend.plan.headless(producer, producer_only);
    if let Some(note) = backend.plan.detector_elsewhere_note() {
        eprintln!("detector: {note}");
    }
    let stop = stop_on_signal();
    let pipeline = Pipeline::start(backend.streams.clone(), settings, report)?;
    let started = Instant::now();
    while !stop.is_stopped()
        && !pipeline.producer_finished()
        && duration.is_none_or(|d| started.elapsed() < d)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("produce: stopping, {}…", backend.plan.stopping_note());
    pipeline.shutdown();
    let c = last_counts.lock().ok().and_then(|c| *c).unwrap_or_default();
    let n = alerts.lock().map(|n| *n).unwrap_or(0);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produce: sent {}, acknowledged {}, failed {}, retries {}; {n} alerts; {:.0} readings/s acknowledged over {secs:.1} s",
        c.sent,
        c.acknowledged,
        c.failed,
        c.retries,
        c.acknowledged as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// `iotaa spike`: one anomalous reading on the readings stream.
pub fn spike(loaded: &Loaded, device: Option<String>, value: Option<i16>) -> Result<ExitCode> {
    let backend = backend::open(loaded)?;
    let reading = spike_reading(
        &backend.plan.producer,
        device,
        value.map(i64::from),
        &mut rand::rng(),
    );
    let line = reading.encode();
    let writer = backend.streams.writer(StreamRole::Readings)?;
    put_all(
        writer.as_ref(),
        vec![(reading.device_id.clone(), line.clone())],
        &StopFlag::default(),
        |_| {},
        None,
    )?;
    std::io::stdout().write_all(&line)?;
    Ok(ExitCode::SUCCESS)
}
