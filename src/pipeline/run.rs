//! Starting and stopping the stages together.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::alerts::AlertSettings;
use super::delivery::DeliverySettings;
use super::detector::DetectorSettings;
use super::producer::{Control, ProducerHandle, ProducerSettings};
use super::{Event, Reporter, Stage, StartAt, StopFlag, Streams};

/// Which stages to run, with their settings; `None` leaves a stage out.
#[derive(Default)]
pub struct PipelineSettings {
    pub producer: Option<ProducerSettings>,
    pub delivery: Option<DeliverySettings>,
    pub detector: Option<DetectorSettings>,
    pub alerts: Option<AlertSettings>,
    /// Tail the anomaly stream from here (for the Scores pane).
    pub tail: Option<StartAt>,
}

/// Sends commands to the running producer.
#[derive(Clone, Debug)]
pub struct Controller(std::sync::mpsc::Sender<Control>);

impl Controller {
    /// A controller sending on `tx` (the pipeline makes its own; tests read what is sent).
    pub fn new(tx: std::sync::mpsc::Sender<Control>) -> Controller {
        Controller(tx)
    }

    /// False when no producer runs.
    pub fn send(&self, c: Control) -> bool {
        self.0.send(c).is_ok()
    }
}

pub struct Pipeline {
    producer_stop: StopFlag,
    stop: StopFlag,
    producer: Option<ProducerHandle>,
    stages: Vec<JoinHandle<()>>,
    /// The anomaly stream's consumers (tail, alerts), stopped after the detector has written
    /// its last scores.
    downstream_stop: StopFlag,
    downstream: Vec<JoinHandle<()>>,
    /// Kept to wake the stages' readers when stopping.
    streams: Arc<dyn Streams>,
}

/// How often the janitor runs the backend's housekeeping (retention).
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

impl Pipeline {
    /// Starts the consumers first (so a tail at `Latest` misses nothing the producer sends),
    /// then the producer.
    pub fn start(
        streams: Arc<dyn Streams>,
        settings: PipelineSettings,
        report: Reporter,
    ) -> std::io::Result<Pipeline> {
        let stop = StopFlag::default();
        let producer_stop = StopFlag::default();
        let downstream_stop = StopFlag::default();
        let mut stages = Vec::new();
        let mut downstream = Vec::new();
        if let Some(from) = settings.tail {
            downstream.push(super::tail::spawn(
                streams.clone(),
                from,
                report.clone(),
                downstream_stop.clone(),
            )?);
        }
        if let Some(s) = settings.alerts {
            downstream.push(super::alerts::spawn(
                streams.clone(),
                s,
                report.clone(),
                downstream_stop.clone(),
            )?);
        }
        if let Some(s) = settings.detector {
            stages.push(super::detector::spawn(
                streams.clone(),
                s,
                report.clone(),
                stop.clone(),
            )?);
        }
        if let Some(s) = settings.delivery {
            stages.push(super::delivery::spawn(
                streams.clone(),
                s,
                report.clone(),
                stop.clone(),
            )?);
        }
        {
            let streams = streams.clone();
            let stop = stop.clone();
            let report = report.clone();
            stages.push(
                std::thread::Builder::new()
                    .name("janitor".into())
                    .spawn(move || janitor(streams.as_ref(), &stop, &report))?,
            );
        }
        let producer = match settings.producer {
            Some(s) => Some(super::producer::spawn(
                streams
                    .writer(super::StreamRole::Readings)
                    .map_err(std::io::Error::other)?,
                s,
                report,
                producer_stop.clone(),
            )?),
            None => None,
        };
        Ok(Pipeline {
            producer_stop,
            stop,
            producer,
            stages,
            downstream_stop,
            downstream,
            streams,
        })
    }

    pub fn controller(&self) -> Option<Controller> {
        self.producer.as_ref().map(|p| Controller(p.sender()))
    }

    /// True once the producer has stopped by itself (a `--count` reached).
    pub fn producer_finished(&self) -> bool {
        self.producer
            .as_ref()
            .is_none_or(ProducerHandle::is_finished)
    }

    /// Stops the producer; then lets the detector and delivery drain the readings stream,
    /// flush the lake buffer and save the model; then lets alerts and the tail drain the
    /// anomaly stream, so the last scores still raise their alerts.
    pub fn shutdown(mut self) {
        self.producer_stop.stop();
        if let Some(p) = self.producer.take() {
            p.join();
        }
        self.stop.stop();
        self.streams.wake_readers();
        for t in self.stages.drain(..) {
            let _ = t.join();
        }
        self.downstream_stop.stop();
        self.streams.wake_readers();
        for t in self.downstream.drain(..) {
            let _ = t.join();
        }
    }
}

fn janitor(streams: &dyn Streams, stop: &StopFlag, report: &Reporter) {
    let mut last = Instant::now();
    while !stop.is_stopped() {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() < HOUSEKEEPING_EVERY {
            continue;
        }
        last = Instant::now();
        match streams.housekeeping() {
            Ok(line) if !line.is_empty() => tracing::info!("{line}"),
            Ok(_) => {}
            Err(e) => report(Event::Problem {
                stage: Stage::Delivery,
                message: format!("housekeeping: {e}"),
            }),
        }
    }
}
